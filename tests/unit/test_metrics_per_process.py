"""Each process exports its own metric families (and the shared ones), not the others'."""

import importlib
import re
import socket
import urllib.request

from prometheus_client import generate_latest

from engine import metrics

for module in ("engine.dispatch.service", "engine.tracking.service"):
    importlib.import_module(module)  # defines that process's families


def families(registry) -> set[str]:
    text = generate_latest(metrics.exported(registry)).decode()
    names = re.findall(r"^# TYPE (yujing_\w+)", text, re.M)
    return {re.sub(r"_(total|info|created)$", "", name) for name in names}


def test_worker_dispatch_and_tracking_each_export_their_own_families_and_the_shared_ones():
    worker, dispatch, tracking = (families(metrics.WORKER), families(metrics.DISPATCH),
                                  families(metrics.TRACKING))
    shared = {"yujing_broker_connected", "yujing_events_deadlettered", "yujing_build",
              "yujing_ready"}
    for exported in (worker, dispatch, tracking):
        assert shared <= exported
    assert {"yujing_rules_loaded", "yujing_events_consumed", "yujing_catching_up"} <= worker
    assert {"yujing_dispatch_orders_created", "yujing_dispatch_open_orders"} <= dispatch
    assert {"yujing_sla_compliance", "yujing_false_alarm_rate"} <= tracking
    # A dispatch process exporting yujing_rules_loaded 0 would page "no rules loaded".
    assert not (worker - shared) & dispatch and not (worker - shared) & tracking
    assert not (dispatch - shared) & tracking and not (dispatch - shared) & worker
    assert not (tracking - shared) & worker


def test_the_metrics_port_of_dispatch_serves_dispatch_families_and_the_build():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reason: list[str] = ["no broker answers"]
    metrics.serve(port, lambda: reason[0] if reason else None, metrics.DISPATCH)

    def page() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return answer.read().decode()

    assert re.search(r"^yujing_ready 0\.0$", page(), re.M)
    reason.clear()
    text = page()
    assert re.search(r"^yujing_ready 1\.0$", text, re.M)
    assert "yujing_dispatch_open_orders" in text and "yujing_rules_loaded" not in text
    assert re.search(r'^yujing_build_info\{version="[^"]+"\} 1\.0$', text, re.M)
    assert "process_cpu_seconds_total" in text  # the client library's process collector


def test_dispatch_counts_every_department_severity_and_status_from_start_up():
    from engine.dispatch.service import series_from_start

    series_from_start()
    for department in ("emergency_management", "market_regulation"):
        for severity in ("blue", "yellow", "orange", "red"):
            labels = {"department": department, "severity": severity}
            assert metrics.sample_value("yujing_dispatch_escalations_total", labels) is not None
            assert metrics.sample_value("yujing_dispatch_orders_created_total",
                                        labels) is not None
    assert metrics.sample_value("yujing_dispatch_feedback_total",
                                {"status": "false_alarm"}) is not None
