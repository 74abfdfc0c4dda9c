"""Writes yujing's Grafana dashboards (``grafana/dashboards/*.json``) from the panel lists below.

    python monitoring/grafana/build_dashboards.py

The JSON files are what Grafana provisions (``provisioning/dashboards/yujing.yml``); this script
is how they are kept alike (one datasource, one layout, every query in one place), and
``tests/integration/test_monitoring_e2e.py`` runs every query here against a real Prometheus.
``tests/unit/test_monitoring_files.py`` checks that the JSON files are what this script writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "yujing-prometheus"}
# A model id begins with its department's folder ("hazchem.tank.level_high").
BY_DEPARTMENT = 'label_replace({q}, "department", "$1", "model", "([^.]+)\\\\..*")'


class Panel(NamedTuple):
    title: str
    queries: tuple[tuple[str, str], ...]
    """(PromQL, legend) pairs."""
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""


def panels_of(spec: list[Panel]) -> list[dict[str, Any]]:
    out = []
    for n, panel in enumerate(spec):
        out.append({
            "id": n + 1,
            "type": panel.kind,
            "title": panel.title,
            "description": panel.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (n % 2), "y": 8 * (n // 2)},
            "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "right"}}
            if panel.kind == "timeseries" else {},
            "targets": [{"datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
                         "refId": chr(ord("A") + i)}
                        for i, (expr, legend) in enumerate(panel.queries)],
        })
    return out


ENGINE = [
    Panel("Events consumed per second, by topic",
          (("sum by (topic) (rate(yujing_events_consumed_total[1m]))", "{{topic}}"),), "ops"),
    Panel("Dead letters per second, by reason",
          (("sum by (reason) (rate(yujing_events_deadlettered_total[5m]))", "{{reason}}"),),
          "ops", description="Each dead letter keeps the original bytes and says why."),
    Panel("Records waiting (consumer lag), by topic",
          (("sum by (topic) (yujing_consumer_lag_records)", "{{topic}}"),)),
    Panel("Newest event scored, age by topic",
          (("max by (topic) (yujing_event_time_lag_seconds)", "{{topic}}"),), "s",
          description="Wall clock minus the newest event time scored; a quiet topic ages too."),
    Panel("Event → alert latency (p50, p95)",
          (("histogram_quantile(0.5, sum by (le, since) "
            "(rate(yujing_alert_latency_seconds_bucket[5m])))", "p50 since {{since}}"),
           ("histogram_quantile(0.95, sum by (le, since) "
            "(rate(yujing_alert_latency_seconds_bucket[5m])))", "p95 since {{since}}")), "s"),
    Panel("Batch scoring time (p95) and events per batch",
          (("histogram_quantile(0.95, sum by (le) (rate(yujing_batch_seconds_bucket[5m])))",
            "p95 seconds"),
           ("sum(rate(yujing_batch_events_sum[5m])) / sum(rate(yujing_batch_events_count[5m]))",
            "events per batch"))),
    Panel("State written to the changelog",
          (("sum(rate(yujing_state_records_written_total[1m]))", "records/s"),
           ("histogram_quantile(0.95, sum by (le) (rate(yujing_state_flush_seconds_bucket[5m])))",
            "p95 flush seconds"))),
    Panel("Rules in force and reloads",
          (("sum by (instance) (yujing_rules_loaded)", "rules {{instance}}"),
           ("sum by (result) (increase(yujing_rule_reloads_total[1h]))", "reloads {{result}}"),
           ("sum(yujing_rule_file_errors)", "files rejected"))),
    Panel("Ready, broker reachable, scraped",
          (("yujing_ready", "ready {{job}} {{instance}}"),
           ("yujing_broker_connected", "broker {{job}} {{instance}}"),
           ('up{job=~"yujing-.*"}', "up {{job}} {{instance}}"))),
    Panel("Partitions assigned and stalled, by worker",
          (("sum by (instance) (yujing_partitions_assigned)", "assigned {{instance}}"),
           ("sum by (instance) (yujing_partitions_stalled)", "stalled {{instance}}"))),
    Panel("Memory (resident)",
          (('process_resident_memory_bytes{job=~"yujing-.*"}', "{{job}} {{instance}}"),),
          "bytes"),
    Panel("CPU (share of one core)",
          (('rate(process_cpu_seconds_total{job=~"yujing-.*"}[1m])', "{{job}} {{instance}}"),),
          "percentunit"),
]

WARNINGS = [
    Panel("Alerts raised per hour, by department",
          (("sum by (department) (" + BY_DEPARTMENT.format(
              q='rate(yujing_alerts_published_total{state="firing"}[5m])') + ") * 3600",
            "{{department}}"),)),
    Panel("Alerts raised in the last hour, by severity",
          (('sum by (severity) (increase(yujing_alerts_published_total{state="firing"}[1h]))',
            "{{severity}}"),)),
    Panel("Top models, alerts raised in 24 h",
          (('topk(10, sum by (model) (increase(yujing_alerts_published_total'
            '{state="firing"}[24h])))', "{{model}}"),), kind="barchart"),
    Panel("False-alarm rate by model (tracking window)",
          (("yujing_false_alarm_rate", "{{model}}"),), "percentunit",
          description="False alarms over the model's work orders closed with a verdict."),
    Panel("Alerts not dispatched (silenced or inhibited), by reason",
          (("sum by (reason) (rate(yujing_alerts_suppressed_total[5m]))", "{{reason}}"),),
          "ops"),
    Panel("Events a model could not judge (a field missing), top models",
          (("topk(10, sum by (model) (rate(yujing_events_undecided_total[5m])))",
            "{{model}}"),), "ops"),
    Panel("Events too late for a model, top models",
          (("topk(10, sum by (model) (rate(yujing_events_late_total[5m])))", "{{model}}"),),
          "ops"),
    Panel("Events scored per second, top models",
          (("topk(10, sum by (model) (rate(yujing_rule_evaluations_total[5m])))",
            "{{model}}"),), "ops"),
    Panel("Alert state changes per hour, by state",
          (("sum by (state) (rate(yujing_alerts_published_total[5m])) * 3600", "{{state}}"),),
          description="firing, resolved, and the escalations of a firing alert's severity."),
]

COMMAND = [
    Panel("Work orders created per hour, by department",
          (("sum by (department) (increase(yujing_dispatch_orders_created_total[1h]))",
            "{{department}}"),)),
    Panel("Escalations per hour, by department and severity",
          (("sum by (department, severity) "
            "(increase(yujing_dispatch_escalations_total[1h]))",
            "{{department}} {{severity}}"),)),
    Panel("Open work orders and incidents",
          (("sum by (level) (yujing_dispatch_open_orders)", "orders open at {{level}} level"),
           ("sum(yujing_dispatch_open_incidents)", "incidents open"),
           ("sum by (department) (yujing_open_orders)", "{{department}} without verdict"))),
    Panel("Department feedback per hour, by status",
          (("sum by (status) (increase(yujing_dispatch_feedback_total[1h]))", "{{status}}"),)),
    Panel("SLA compliance by department",
          (('yujing_sla_compliance{scope="department"}', "{{name}}"),), "percentunit",
          description="Work orders acknowledged within their severity's limit, tracking window."),
    Panel("Time to acknowledge by department (p50, p90)",
          (('yujing_ack_seconds{scope="department"}', "{{name}} p{{quantile}}"),), "s"),
    Panel("Time to resolve by department (p50, p90)",
          (('yujing_resolve_seconds{scope="department"}', "{{name}} p{{quantile}}"),), "s"),
    Panel("Work orders in the tracking window, by department",
          (('yujing_window_orders{scope="department"}', "{{name}} created"),
           ('yujing_window_orders_closed{scope="department"}', "{{name}} closed"))),
]

DASHBOARDS = {
    "yujing-engine": ("yujing · engine health", ENGINE),
    "yujing-warnings": ("yujing · warnings", WARNINGS),
    "yujing-command": ("yujing · command", COMMAND),
}


def dashboard(uid: str, title: str, spec: list[Panel]) -> dict[str, Any]:
    return {"uid": uid, "title": title, "tags": ["yujing"], "timezone": "browser",
            "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"}, "editable": True,
            "panels": panels_of(spec), "templating": {"list": []}, "annotations": {"list": []}}


def rendered() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {f"{uid}.json": json.dumps(dashboard(uid, title, spec), indent=2,
                                      ensure_ascii=False) + "\n"
            for uid, (title, spec) in DASHBOARDS.items()}


def queries() -> list[str]:
    """Every PromQL query of every dashboard."""
    return [expr for _, spec in DASHBOARDS.values() for panel in spec
            for expr, _ in panel.queries]


if __name__ == "__main__":
    for name, text in rendered().items():
        (HERE / "dashboards" / name).write_text(text, encoding="utf-8")
        print(f"wrote {HERE / 'dashboards' / name}")
