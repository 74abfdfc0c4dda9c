"""``yujing demo``: the whole loop on this machine — alert, work order, escalation, answer,
scorecard — in about a minute.

Starts a Kafka broker of its own on 127.0.0.1:9092 (fetching its jars the first time). Its home
is ``demo-kafka`` beside the default broker's home, and it is wiped at every start: the workers'
state, open incidents and the tracking window all live in Kafka, so a fresh cluster is what
makes one run look like the next. Then it creates the topics, publishes the reference data and
starts, as subprocesses logging beside each other (``demo-*.log``):

- the worker, scoring with the rules in ``rules/``;
- dispatch, with the shipped routing tree at demo speed (``demo-routes.yaml``: every level of
  the chain — town, district, city — acknowledges red within 6 s, orange 15 s, yellow 20 s,
  blue 30 s), so an unanswered order climbs the three levels while one watches;
- tracking, publishing scorecards every 2 s;
- the simulator, the city's background traffic at real-time pace (its alerts are only counted).

Once the worker, dispatch and tracking are up it sends a short scripted scene — a tanker
speeding on a highway, a storage tank filling past its high-high level, a gas alarm, a truck
whose GPS falls silent with the engine on, and two malformed records — and prints the scene's
alerts, dead letters and work orders as they arrive. It plays the departments too: each order
is acknowledged a few seconds after it appears, except the fire brigade's order for the tank:
the tank is in grid G0406, so the order starts at its town's desk (拱宸桥街道), which does not
answer, nor does the district's (拱墅区) after it; at the city level the command centre takes it.
The gas alarm turns out to be a false alarm and the speeding tanker's order is resolved. At the
end it prints who held the climbing order when, the scorecards of the departments that had the
scene's orders, of the command levels and of the models with false alarms, and stops
everything it started (the broker too, unless ``keep``).

The exit status is 0 only when an alert, a dead letter, a work order, an escalation through the
three levels and a scorecard were all seen.
"""

from __future__ import annotations

import asyncio
import heapq
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from engine import broker
from engine.dispatch.cli import DEFAULT_ROUTES
from engine.dispatch.routing import Routing, load_routing
from engine.kafka_client.admin import ensure_topics
from engine.kafka_client.connection import client_options
from engine.kafka_client.reference import publish_reference
from engine.rule_files.loader import load_rules
from simulator.demo_services import START_TIMEOUT_S, Service, console_service, stop_all
from topics.personal_data import mask_text
from topics.records import Feedback, FeedbackStatus
from topics.registry import ALERTS, DEADLETTER, EVENT_TOPICS, FEEDBACK, ORDERS, SCORECARDS
from topics.schemas import CITY_TZ

VEHICLE, FACILITY = "events.hazchem.vehicle", "events.hazchem.facility"
COLOURS = {"blue": "\033[34m", "yellow": "\033[33m", "orange": "\033[38;5;208m",
           "red": "\033[31m"}
RESET = "\033[0m"

METRICS_PORT = 9464
"""Prometheus /metrics port of the worker; dispatch and tracking take the two after it."""
DEMO_ACK_WITHIN = {"red": "6s", "orange": "15s", "yellow": "20s", "blue": "30s"}
"""The routing file's limits, at every level, scaled from minutes and hours down to seconds, so
an order nobody answers climbs town → district → city while the demo runs."""
TRACK_EVERY = "2s"
SIMULATOR_EXTRA_S = 30.0
"""The simulator runs this much longer than the watch: it spends its first seconds loading the
rules' zones, and stopping it early is harmless."""
SCORECARD_GRACE_S = 10.0
"""How much longer to wait after the watch for a first scorecard, if none came yet."""

ACK_AFTER_S = 3.0
"""A department answers its order this long after it appears."""
CLOSE_AFTER_S = 5.0
"""… and closes the orders it closes this long after answering."""
UNANSWERED = ("DEMO-T3", "fire_rescue")
"""(key, department) of the order neither its town nor its district answers: red, so it climbs
to the district after 6 s and to the city after 6 more, where the command centre takes it."""
TANK_GRID = "G0406"
"""The grid of the scene's tanks: in 拱宸桥街道 (gongshu.gongchenqiao), 拱墅区."""
CLOSED: dict[tuple[str, str], tuple[FeedbackStatus, str]] = {
    ("DEMO-T4", "emergency_management"): (
        "false_alarm", "on site: detector DEMO-T4 fouled, no leak found"),
    ("DEMO-V1", "transport"): ("resolved", "driver reached by phone, back under 80 km/h"),
}
"""(key, department) of the orders their department closes, with the verdict."""


def scene(now: float) -> list[tuple[str, str | None, dict[str, Any] | bytes]]:
    """(topic, key, event) records of the demo scene, timed relative to ``now``."""
    t0 = now - 120
    truck = {"vehicle_id": "DEMO-V1", "plate": "浙A·D0001", "lat": 30.25, "lon": 120.16,
             "road_class": "highway", "cargo_class": 3, "ignition": True}
    records: list[tuple[str, str | None, dict[str, Any] | bytes]] = []
    for i, speed in enumerate([78, 86, 91, 93, 90, 72]):
        records.append((VEHICLE, "DEMO-V1", {**truck, "event_id": f"demo-v1-{i}",
                                             "ts": t0 + 15 * i, "speed_kmh": speed}))
    tank = {"tank_id": "DEMO-T3", "facility_id": "DEMO-F1", "temp_c": 21.0, "lel_pct": 0.0,
            "toxic_ppm": 0.0, "grid_id": TANK_GRID}
    for i, level in enumerate([88.0, 91.5, 94.0, 95.6, 96.1]):
        records.append((FACILITY, "DEMO-T3", {**tank, "event_id": f"demo-t3-{i}",
                                              "ts": t0 + 20 * i, "level_pct": level}))
    # Another tank of the facility, with no grid: its own incident, held at the city level.
    records.append((FACILITY, "DEMO-T4", {**tank, "tank_id": "DEMO-T4", "event_id": "demo-t4",
                                          "ts": t0 + 30, "level_pct": 40.0, "lel_pct": 31.0,
                                          "grid_id": None}))
    records.append((VEHICLE, "DEMO-V2", {"vehicle_id": "DEMO-V2", "plate": "浙A·D0002",
                                         "lat": 30.3, "lon": 120.2, "speed_kmh": 0.0,
                                         "ignition": True, "event_id": "demo-v2",
                                         "ts": now - 11 * 60}))
    records.append((FACILITY, "DEMO-BAD1", b'{"tank_id": "DEMO-BAD1", "level_pct": 9'))
    records.append((VEHICLE, "DEMO-BAD2", {"event_id": "demo-bad2", "ts": now,
                                           "vehicle_id": "DEMO-BAD2", "lat": 30.1,
                                           "lon": 120.1, "speed_kmh": "fast"}))
    return records


# -- the routing file at demo speed -----------------------------------------------------------

def write_demo_routes(source: Path, dest: Path) -> tuple[Routing | None, list[str]]:
    """Write ``source``'s routing tree to ``dest`` with the demo's acknowledgement limits (and
    without its tests); load it as ``yujing dispatch check`` does: the routing, or ``None`` and
    every problem."""
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, [f"{source}: cannot read: {exc}"]
    if isinstance(raw, dict):
        raw.pop("tests", None)  # they test the shipped file, whose limits these are not
        defaults = raw.get("defaults")
        raw["defaults"] = {**(defaults if isinstance(defaults, dict) else {}),
                           "ack_within": dict(DEMO_ACK_WITHIN)}
        for level in raw["defaults"].get("levels") or []:
            if isinstance(level, dict):
                level.pop("ack_within", None)  # each level then has the demo's limits
        if isinstance(raw.get("route"), dict):
            _drop_ack_within(raw["route"])
    header = (f"# Written by `yujing demo` from {source}: the same tree, acknowledgement "
              "limits in seconds.\n")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(header + yaml.safe_dump(raw, allow_unicode=True, sort_keys=False, width=100),
                    encoding="utf-8")
    routing, errors = load_routing(dest)
    return routing, [str(error) for error in errors]


def _drop_ack_within(route: dict[str, Any]) -> None:
    # A route's own limit would override the demo's defaults with minutes again.
    route.pop("ack_within", None)
    route.pop("levels", None)
    for child in route.get("routes") or []:
        if isinstance(child, dict):
            _drop_ack_within(child)


# -- the services -----------------------------------------------------------------------------

@dataclass(order=True, slots=True)
class Reply:
    """Feedback a department will send at ``due`` (monotonic seconds)."""

    due: float
    order_id: str
    status: FeedbackStatus
    department: str
    key: str
    note: str


@dataclass(slots=True)
class Seen:
    """What the demo saw of the run."""

    alerts: int = 0
    dead_letters: int = 0
    escalations: int = 0
    replies: int = 0
    scene_alert_ids: set[str] = field(default_factory=set)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The scene's work orders by id, as last published."""
    background_alerts: set[str] = field(default_factory=set)
    background_orders: set[str] = field(default_factory=set)
    background_events: int = 0
    """Department events the simulated city sent."""
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The latest scorecard of each ``<scope>:<name>``."""
    failures: list[str] = field(default_factory=list)


def _say(line: str) -> None:
    """Print a line of the scene as it happens, phone and ID numbers masked (a dead letter's
    reason can quote the event it refused)."""
    print(mask_text(line), flush=True)


def _show_alert(alert: dict[str, Any]) -> str:
    sev = alert["severity"]
    colour = COLOURS.get(sev, "") if sys.stdout.isatty() else ""
    reset = RESET if colour else ""
    return (f"{colour}[{sev.upper():6}]{reset} {alert['state']:8} {alert['model_id']:40} "
            f"{alert['key']:10} {alert['summary']}")


def _show_order(what: str, order: dict[str, Any], detail: str) -> str:
    return (f"[ORDER ] {what:12} {order['department']:21} {order['key']:10} "
            f"#{order['order_id'][:6]} {order['severity']:6} {order['level']:8} {detail}")


def _last_note(order: dict[str, Any], what: str) -> str:
    entry = next((h for h in reversed(order.get("history") or []) if h["what"] == what), None)
    if entry is None:
        return ""
    return f"by {entry.get('by') or '?'}" + (f": {entry['note']}" if entry.get("note") else "")


class Watch:
    """Reads the run's topics, prints the scene's part of it and answers its work orders."""

    def __init__(self, escalate_to: str) -> None:
        self.escalate_to = escalate_to
        self.seen = Seen()
        self.replies: list[Reply] = []

    def take(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if topic == SCORECARDS.name and key is not None:
                self.seen.cards.pop(key.decode(), None)  # a tombstone: out of the window
            return
        record = orjson.loads(value)
        if topic == ALERTS.name:
            self._alert(record)
        elif topic == DEADLETTER.name and "DEMO" in str(record.get("key")):
            self.seen.dead_letters += 1
            _say(f"[DEAD  ] {record['source_topic']} offset {record['offset']}: "
                  f"{record['reason']}")
        elif topic == ORDERS.name:
            self._order(record)
        elif topic == SCORECARDS.name:
            self.seen.cards[f"{record['scope']}:{record['name']}"] = record

    def _alert(self, alert: dict[str, Any]) -> None:
        if not str(alert.get("key", "")).startswith("DEMO"):
            self.seen.background_alerts.add(alert["alert_id"])
            return
        self.seen.alerts += 1
        self.seen.scene_alert_ids.add(alert["alert_id"])
        _say(_show_alert(alert))

    def _order(self, order: dict[str, Any]) -> None:
        order_id, key, department = order["order_id"], order["key"], order["department"]
        # An order is the scene's when one of its alerts is, even in a place's incident that a
        # background alert opened (the order then carries that alert's key).
        if not (key.startswith("DEMO") or self.seen.scene_alert_ids & set(order["alert_ids"])):
            self.seen.background_orders.add(order_id)
            return
        before = self.seen.orders.get(order_id)
        self.seen.orders[order_id] = order
        now = time.monotonic()
        if before is None:
            _say(_show_order("created", order, order["summary"]))
            if (key, department) != UNANSWERED:
                self._plan(now + ACK_AFTER_S, order, "acknowledged", department,
                           "received, on it")
            if (key, department) in CLOSED:
                status, note = CLOSED[key, department]
                self._plan(now + ACK_AFTER_S + CLOSE_AFTER_S, order, status, department, note)
        if order["escalations"] > (before["escalations"] if before else 0):
            self.seen.escalations += 1
            climbed = before is not None and order["level"] != before["level"]
            what = "escalated" if climbed else "re-escalated"
            _say(_show_order(what, order, _last_note(order, "escalated")))
            if climbed and order["level"] == "city" and order["state"] == "open":
                self._plan(now + ACK_AFTER_S, order, "acknowledged", self.escalate_to,
                           "command centre takes it over")
        if before is not None and order["state"] != before["state"]:
            what = order["state"].replace("_", " ")
            _say(_show_order(what, order, _last_note(order, order["state"])))

    def _plan(self, due: float, order: dict[str, Any], status: FeedbackStatus,
              department: str, note: str) -> None:
        heapq.heappush(self.replies, Reply(due, order["order_id"], status, department,
                                           order["key"], note))

    async def answer(self, producer: AIOKafkaProducer) -> None:
        """Send the replies that are due, as the department systems would."""
        while self.replies and self.replies[0].due <= time.monotonic():
            reply = heapq.heappop(self.replies)
            feedback = Feedback(order_id=reply.order_id, status=reply.status,
                                department=reply.department, at=time.time(),
                                by=f"{reply.department} duty desk", note=reply.note)
            await producer.send_and_wait(FEEDBACK.name, feedback.model_dump_json().encode(),
                                         key=reply.order_id.encode())
            self.seen.replies += 1
            _say(f"[REPLY ] {reply.status:12} {reply.department:21} {reply.key:10} "
                  f"#{reply.order_id[:6]} \"{reply.note}\"")


async def _run_scene(bootstrap: str, wait_s: float, escalate_to: str,
                     services: list[Service]) -> Seen:
    # From the beginning: the cluster is fresh, so everything on these topics is this run's,
    # the simulated city's background included.
    consumer = AIOKafkaConsumer(ALERTS.name, DEADLETTER.name, ORDERS.name, SCORECARDS.name,
                                **client_options(bootstrap), auto_offset_reset="earliest",
                                enable_auto_commit=False)
    producer = AIOKafkaProducer(**client_options(bootstrap), linger_ms=5)
    watch = Watch(escalate_to)
    await consumer.start()
    await producer.start()
    try:
        records = scene(time.time())
        for topic, key, value in records:
            body = value if isinstance(value, bytes) else orjson.dumps(value)
            await producer.send(topic, body, key=key.encode() if key else None)
        await producer.flush()
        print("sent the demo scene; its alerts, work orders and the departments' replies as "
              "they happen:\n", flush=True)
        deadline = time.monotonic() + wait_s
        while True:
            now = time.monotonic()
            if now >= deadline and (watch.seen.cards or now >= deadline + SCORECARD_GRACE_S):
                break
            batches = await consumer.getmany(timeout_ms=250)
            # Alerts first: an order is recognised as the scene's by its alerts' ids.
            for tp in sorted(batches, key=lambda tp: tp.topic != ALERTS.name):
                for message in batches[tp]:
                    watch.take(tp.topic, message.key, message.value)
            await watch.answer(producer)
            for service in services:
                if (why := service.failed()) is not None and why not in watch.seen.failures:
                    watch.seen.failures.append(why)
                    print(f"[!] {why}", flush=True)
        partitions = [TopicPartition(spec.name, p) for spec in EVENT_TOPICS.values()
                      for p in range(spec.partitions)]
        # Every department event of the fresh cluster is the simulator's, except the scene's.
        ends = await consumer.end_offsets(partitions)
        watch.seen.background_events = sum(ends.values()) - len(records)
    finally:
        await producer.stop()
        await consumer.stop()
    return watch.seen


# -- the scorecards and the verdict ----------------------------------------------------------

def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _false_alarm_rate(card: dict[str, Any]) -> str:
    """``100% of 1``: the rate with the orders closed with a verdict it is over."""
    rate = card["false_alarm_rate"]
    return "—" if rate is None else f"{rate:.0%} of {card['closed']}"


def scorecard_lines(seen: Seen) -> list[str]:
    """The departments that had the scene's orders, and the models with false alarms."""
    departments = sorted({o["department"] for o in seen.orders.values()})
    cards = [seen.cards[f"department:{d}"] for d in departments if f"department:{d}" in seen.cards]
    lines = ["scorecards (performance.scorecards; every order of the run, the simulated city's "
             "too):",
             f"  {'department':22} {'orders':>6} {'acked':>6} {'resolved':>8} {'false':>6} "
             f"{'ack p50':>8} {'SLA met':>8} {'open':>5}"]
    lines += [f"  {c['name']:22} {c['orders']:6} {c['acknowledged']:6} {c['resolved']:8} "
              f"{c['false_alarms']:6} {_seconds(c['ack_p50_s']):>8} "
              f"{_share(c['sla_compliance']):>8} {c['open_backlog']:5}" for c in cards]
    levels = [seen.cards[f"level:{n}"] for n in ("town", "district", "city")
              if f"level:{n}" in seen.cards]
    lines += [f"  {'command level':22} {'orders':>6} {'took':>6} {'ack p50':>8} "
              f"{'SLA met':>8} {'holds':>5}"] if levels else []
    lines += [f"  {c['name']:22} {c['orders']:6} {c['acknowledged']:6} "
              f"{_seconds(c['ack_p50_s']):>8} {_share(c['sla_compliance']):>8} "
              f"{c['open_backlog']:5}" for c in levels]
    noisy = sorted((c for c in seen.cards.values()
                    if c["scope"] == "model" and c["false_alarms"]), key=lambda c: c["name"])
    if noisy:
        lines.append(f"  {'model with false alarms':40} {'orders':>6} {'closed':>6} "
                     f"{'false':>6} {'false-alarm rate':>16}")
        lines += [f"  {c['name']:40} {c['orders']:6} {c['closed']:6} {c['false_alarms']:6} "
                  f"{_false_alarm_rate(c):>16}" for c in noisy]
    return lines


def level_lines(seen: Seen) -> list[str]:
    """Who held each of the scene's orders that climbed, and when (seconds from its creation)."""
    lines = []
    for order in seen.orders.values():
        holds = order.get("levels") or []
        if len(holds) < 2:
            continue
        steps = [f"{h['level']}{' ' + h['place'] if h.get('place') else ''} "
                 f"+{h['since'] - order['created_at']:.0f}s" for h in holds]
        answer = next((h for h in order["history"] if h["what"] == "acknowledged"), None)
        if answer is not None:
            steps.append(f"acknowledged by {answer.get('by') or '?'} "
                         f"+{answer['at'] - order['created_at']:.0f}s")
        lines.append(f"  {order['department']} {order['key']}: " + " → ".join(steps))
    return ["orders that climbed the command levels (镇街 → 县区 → 市):", *lines] if lines else []


def climbed_three_levels(seen: Seen) -> int:
    """The scene's orders held by the town, the district and the city in turn."""
    return sum(1 for o in seen.orders.values()
               if [h["level"] for h in o.get("levels") or []] == ["town", "district", "city"])


def missing(seen: Seen) -> list[str]:
    """What the demo should have shown and did not."""
    wanted = {"an alert": seen.alerts, "a dead letter": seen.dead_letters,
              "a work order": len(seen.orders), "an escalation": seen.escalations,
              "an escalation through town, district and city": climbed_three_levels(seen),
              "a scorecard": len(seen.cards)}
    return [name for name, count in wanted.items() if not count] + seen.failures


# -- the demo ---------------------------------------------------------------------------------

def run_demo(rules: list[Path], wait_s: float = 30.0, keep: bool = False,
             kafka_port: int = 9092, metrics_port: int = METRICS_PORT,
             console_port: int = 8080) -> int:
    """The demo on ``kafka_port`` (its controller on the next port); the worker's metrics on
    ``metrics_port``, dispatch's and tracking's on the two after; the console on
    ``console_port``."""
    began = time.monotonic()
    worker_port, dispatch_port, track_port = metrics_port, metrics_port + 1, metrics_port + 2
    # The demo's own broker home, beside the default one (``yujing broker``'s is left alone).
    cfg = broker.BrokerConfig(home=broker.BrokerConfig().home.parent / "demo-kafka",
                              port=kafka_port, controller_port=kafka_port + 1)
    folder = cfg.home.parent
    routes = folder / "demo-routes.yaml"
    routing, problems = write_demo_routes(DEFAULT_ROUTES, routes)
    if routing is None:
        print("\n".join(problems), file=sys.stderr)
        print(f"error: the demo's routing file {routes} (from {DEFAULT_ROUTES}) does not load; "
              f"`yujing dispatch check {routes}` shows the same", file=sys.stderr)
        return 1

    print(f"starting Kafka {cfg.kafka_version} on {cfg.bootstrap}, a fresh cluster in "
          f"{cfg.home} (first run fetches its jars with Maven) …", flush=True)
    broker.wipe(cfg)  # also stops one a previous `yujing demo --keep` left running
    try:
        broker.start(cfg)
    except RuntimeError as exc:
        print(f"error: cannot start the demo's broker: {exc}\n(is another broker on "
              f"{cfg.bootstrap}? `yujing broker stop` stops the one of `yujing broker start`)",
              file=sys.stderr)
        return 1
    services: list[Service] = []
    try:
        asyncio.run(ensure_topics(cfg.bootstrap))
        sent = asyncio.run(publish_reference(cfg.bootstrap, load_rules(rules).env.reference))
        print(f"published {sent} reference records (zones, lists)", flush=True)
        bootstrap = ["--bootstrap", cfg.bootstrap]
        services = [
            Service("worker", ["worker", *bootstrap, "--app-id", "yujing-demo",
                               "--metrics-port", str(worker_port),
                               *[arg for path in rules for arg in ("--rules", str(path))]],
                    folder / "demo-worker.log", b"Ready"),
            Service("dispatcher", ["dispatch", "run", *bootstrap, "--routes", str(routes),
                                   "--group-id", "yujing-demo-dispatch",
                                   "--metrics-port", str(dispatch_port)],
                    folder / "demo-dispatch.log", b"dispatching: consuming"),
            Service("tracker", ["track", *bootstrap, "--every", TRACK_EVERY,
                                "--metrics-port", str(track_port)],
                    folder / "demo-track.log", b"scorecards every"),
        ]
        console, password = console_service(folder, [*bootstrap, *[
            arg for path in rules for arg in ("--rules", str(path))]], console_port)
        services.append(console)
        print(f"starting the worker, dispatch (acknowledge at each level within "
              f"{', '.join(f'{k} {v}' for k, v in DEMO_ACK_WITHIN.items())}) and tracking; "
              f"logs: {folder}/demo-*.log …", flush=True)
        for service in services:
            service.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        for service in services:
            service.wait_ready(deadline)
        print(f"all up; metrics on http://127.0.0.1:{worker_port}/metrics (worker), "
              f":{dispatch_port} (dispatch), :{track_port} (tracking); the console on "
              f"http://127.0.0.1:{console_port}/ (user duty, password {password}, while the "
              "demo runs)", flush=True)
        start = datetime.now(CITY_TZ).isoformat(timespec="seconds")
        simulator = Service("simulator", [
            "simulate", *bootstrap, "--start", start,
            "--duration", f"{wait_s + SIMULATOR_EXTRA_S:.0f}s", "--rate", "1", "--speed", "1"],
            folder / "demo-simulate.log", None)
        services.append(simulator)
        simulator.start()
        print(f"the simulated city's traffic flows in the background from {start}, "
              "in real time", flush=True)
        seen = asyncio.run(_run_scene(cfg.bootstrap, wait_s, routing.escalate_to, services))
        print()
        for line in [*level_lines(seen), *scorecard_lines(seen)]:
            print(line)
        escalated = sum(1 for o in seen.orders.values() if o["escalations"])
        print(f"\nthe scene: {seen.alerts} alerts, {seen.dead_letters} dead letters, "
              f"{len(seen.orders)} work orders ({escalated} escalated), {seen.replies} replies "
              f"sent; the simulated city: {seen.background_events} events, "
              f"{len(seen.background_alerts)} alerts, {len(seen.background_orders)} work orders "
              "(not shown)")
        absent = missing(seen)
        if absent:
            print(f"missing: {', '.join(absent)}")
        return 1 if absent else 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_all(services)
        stopped = "stopped the worker, dispatch, tracking and the simulator"
        if keep:
            print(f"{stopped}; the broker keeps running (stop it with "
                  f"`YUJING_HOME={cfg.home} yujing broker stop`)")
        else:
            broker.stop(cfg)
            print(f"{stopped}, and the broker")
        print(f"demo done in {time.monotonic() - began:.0f} s")
