"""The dashboards' panels drawn from real data, as PNG, where Grafana cannot run.

    pip install -e '.[screens]'
    python monitoring/render_panels.py [--wait 300] [--out docs/monitoring]

Runs ``yujing demo --wait N`` (broker, worker, dispatch, tracking, the scripted scene and the
simulated city in real time) with Debian's Prometheus scraping its three processes every 2 s,
then asks Prometheus for every panel's queries over the run (``/api/v1/query_range``) and draws
each dashboard as one PNG: the same PromQL as ``grafana/dashboards/*.json``, plotted by
matplotlib instead of Grafana.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "grafana"))
import build_dashboards  # noqa: E402

PROMETHEUS_PORT = 19090
STEP_S = 4


def prometheus_config(folder: Path) -> Path:
    jobs = "".join(f"""
  - job_name: yujing-{job}
    static_configs:
      - targets: ["127.0.0.1:{port}"]""" for job, port in (
        ("worker", 9464), ("dispatch", 9465), ("track", 9466)))
    path = folder / "prometheus.yml"
    path.write_text(f"global:\n  scrape_interval: 2s\nscrape_configs:{jobs}\n")
    return path


def query_range(expr: str, start: float, end: float) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end,
                                     "step": STEP_S})
    url = f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query_range?{params}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())["data"]["result"]


def legend(template: str, labels: dict[str, str]) -> str:
    for key, value in labels.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def draw(title: str, spec: list[build_dashboards.Panel], start: float, end: float,
         out: Path) -> None:
    cols = 2
    rows = (len(spec) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.4 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, spec, strict=False):
        for expr, template in panel.queries:
            for series in query_range(expr, start, end):
                points = [(float(t) - start, float(v)) for t, v in series["values"]
                          if v not in ("NaN", "+Inf", "-Inf")]
                # A series at 0 throughout (a department without orders) is left out: Grafana
                # shows those too, but forty flat lines hide the few that move.
                if points and any(y != 0 for _, y in points):
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, label=legend(template, series["metric"])[:40])
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("seconds into the run", fontsize=8)
        ax.set_ylabel(panel.unit, fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.lines:
            ax.legend(fontsize=6, loc="upper left", ncol=2 if len(ax.lines) < 13 else 3)
        else:
            ax.text(0.5, 0.5, "every series at 0", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9, color="grey")
    for ax in list(axes.flat)[len(spec):]:
        ax.axis("off")
    fig.suptitle(f"{title} — yujing demo, {end - start:.0f} s of real data (series at 0 "
                 "throughout left out)", fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wait", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "monitoring")
    args = parser.parse_args()
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        print("prometheus is not installed (apt-get install prometheus)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="yujing-screens-") as tmp:
        folder = Path(tmp)
        prom = subprocess.Popen(
            [prometheus, f"--config.file={prometheus_config(folder)}",
             f"--storage.tsdb.path={folder / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            start = time.time()
            demo = subprocess.run([sys.executable, "-m", "engine.cli", "demo", "--wait",
                                   str(args.wait)], cwd=REPO)
            end = time.time()
            if demo.returncode != 0:
                print("the demo failed: no screenshots", file=sys.stderr)
                return demo.returncode
            for uid, (title, spec) in build_dashboards.DASHBOARDS.items():
                out = args.out / f"{uid}.png"
                draw(title, spec, start, end, out)
                print(f"wrote {out}")
        finally:
            prom.terminate()
            prom.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
