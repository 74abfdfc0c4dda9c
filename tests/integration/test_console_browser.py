"""The web console in a real browser (Debian's chromium driven by Playwright), against the real
broker and real processes: a worker with this module's rule, dispatch with a short
acknowledgement limit, tracking, and ``yujing console`` with three users (the command centre,
the fire desk, the transport desk).

Each test saves a PNG of its page: in its own temporary folder, or in the folder
``YUJING_SCREENSHOTS`` names (``YUJING_SCREENSHOTS=docs/console`` makes the README's pictures).
The produce → wall time is printed (``-s`` shows it), not asserted: performance is measured.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import statistics
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.console.sessions import hash_password
from engine.kafka_client.whole_topics import partitions_of
from tests.integration.kafkakit import (
    REPO,
    dumps,
    free_ports,
    produce,
    quick_ack_routes,
    read_until,
    wait_for_log,
    worker_process,
    yujing_process,
)
from tests.rulekit import FACILITY, rule_text

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (make tools)"),
]

# Every switch that keeps chromium off the internet (the machine has none).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ACK_LIMIT_S = 4.0
PASSWORD = "browser-test-password"
USERS = {"duty": ("command", None), "fire-desk": ("department", "fire_rescue"),
         "road-desk": ("department", "transport")}
WAIT_MS = 60_000

@dataclass
class Stack:
    """The processes a test drives, and what it needs to talk to them."""

    bootstrap: str
    run_id: str
    folder: Path
    port: int
    config: Path
    rules: Path
    exits: ExitStack = field(default_factory=ExitStack)
    console: Any = None
    events: Iterator[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def model(self) -> str:
        return f"browser.{self.run_id}.level"

    def tank(self, name: str) -> str:
        return f"{self.run_id}-{name}"

    def ours(self, record: dict[str, Any]) -> bool:
        return self.run_id in str(record)

    def start_console(self) -> None:
        log = self.folder / "console.log"
        after = log.stat().st_size if log.exists() else 0
        self.console = self.exits.enter_context(yujing_process(
            log, "--config", str(self.config), "console", "--bootstrap", self.bootstrap,
            "--port", str(self.port), "--rules", str(self.rules),
            "--sessions-file", str(self.folder / "sessions.json")))
        wait_for_log(log, "; live", self.console, after=after)

    def kill_console(self) -> None:
        """SIGKILL: the server goes without a word, as in a crash."""
        os.killpg(self.console.pid, signal.SIGKILL)
        self.console.wait(10)

    def level(self, tank: str, level_pct: float, grid: str, district: str,
              **fields: Any) -> None:
        """One reading of ``tank``: 95 % or more fires this module's red alert, below 90 %
        resolves it (and ``temp_c`` of 60 or more the orange one)."""
        run(produce(self.bootstrap, [(FACILITY, tank.encode(), dumps({
            "event_id": f"{self.run_id}-{next(self.events)}", "ts": time.time(),
            "tank_id": tank, "facility_id": f"{self.run_id}-F", "grid_id": grid,
            "district": district, "level_pct": level_pct, **fields}))]))


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """The kit's coroutines on a thread of their own: Playwright's synchronous API keeps an
    event loop running on this one, where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coro).result()


def _users_toml() -> str:
    hashed = hash_password(PASSWORD)
    tables = []
    for name, (role, area) in USERS.items():
        tables.append(f'[[users]]\nname = "{name}"\npassword_hash = "{hashed}"\n'
                      f'role = "{role}"\n' + (f'area = "{area}"\n' if area else ""))
    return "\n".join(tables)


def _console_rules(target: Path, models: Path) -> Path:
    """The repository's rules (the models' descriptions, the districts and towns of the map)
    and this module's rules."""
    import shutil

    shutil.copytree(REPO / "rules", target)
    shutil.copytree(models, target / "browser_test")
    return target


@pytest.fixture(scope="module")
def stack(kafka, tmp_path_factory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("console-browser")
    run_id = "b" + uuid.uuid4().hex[:8]
    config = folder / "yujing.toml"
    config.write_text(_users_toml(), encoding="utf-8")
    found = Stack(kafka.bootstrap, run_id, folder, free_ports(1)[0], config, folder / "rules")
    worker_rules = folder / "worker-rules"
    worker_rules.mkdir()
    # Two departments on every order's incident: the desks' separation has both to tell apart.
    model_rule = rule_text(
        id=found.model, source=FACILITY, kind="threshold", severity="red",
        departments=["fire_rescue", "transport"], where=f'facility_id == "{run_id}-F"',
        condition="level_pct >= 95", clear="level_pct < 90",
        summary="tank {tank_id} at {level_pct}%",
        description="A test tank over 95 %: the browser tests' red alert.")
    (worker_rules / "level.yaml").write_text(model_rule, encoding="utf-8")
    # An orange one beside it, so the wall shows more than one colour.
    (worker_rules / "warm.yaml").write_text(rule_text(
        id=f"browser.{run_id}.warm", source=FACILITY, kind="threshold", severity="orange",
        departments=["fire_rescue"], where=f'facility_id == "{run_id}-F"',
        condition="temp_c >= 60", clear="temp_c < 50", summary="tank {tank_id} at {temp_c} °C",
        description="A test tank over 60 °C."), encoding="utf-8")
    _console_rules(found.rules, worker_rules)
    routes = quick_ack_routes(folder / "routes.yaml", f"browser.{run_id}.*",
                              f"{ACK_LIMIT_S:g}s")
    with found.exits:
        worker = found.exits.enter_context(worker_process(
            kafka.bootstrap, worker_rules, f"browser-{run_id}", folder / "worker.log"))
        found.exits.enter_context(yujing_process(
            folder / "dispatch.log", "dispatch", "run", "--bootstrap", kafka.bootstrap,
            "--routes", str(routes), "--group-id", f"dispatch-{run_id}", "--metrics-port", "0"))
        found.exits.enter_context(yujing_process(
            folder / "track.log", "track", "--bootstrap", kafka.bootstrap, "--every", "1s",
            "--metrics-port", "0"))
        found.start_console()
        wait_for_log(folder / "worker.log", "reference topics read to their end", worker)
        yield found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as driver:
        # Playwright gives each launch a fresh profile (its own --user-data-dir).
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                          args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Page:
    """A signed-in page and what went wrong in it (script errors, refused assets)."""

    page: Any
    errors: list[str]


@pytest.fixture
def open_page(browser, stack, request) -> Iterator[Callable[..., Page]]:
    opened: list[Page] = []

    def open_as(user: str, hash_: str = "#/wall") -> Page:
        context = browser.new_context(viewport={"width": 1440, "height": 900},
                                      locale="zh-CN", timezone_id="Asia/Shanghai")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{stack.url}/login")
        page.fill("input[name=name]", user)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        try:
            page.wait_for_selector('#live[data-state="live"]', timeout=WAIT_MS)
        except playwright_api.Error as exc:
            badge = page.evaluate("document.getElementById('live')?.outerHTML")
            raise AssertionError(f"never live ({badge}) at {page.url}: {errors}") from exc
        page.evaluate(f"location.hash = {orjson.dumps(hash_).decode()}")
        found = Page(page, errors)
        opened.append(found)
        return found

    yield open_as
    for found in opened:
        found.page.context.close()


def screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("YUJING_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def read_to_end(bootstrap: str, topic: str, wanted: Callable[[dict[str, Any]], bool]
                ) -> list[dict[str, Any]]:
    """Every JSON record of ``topic`` ``wanted`` keeps, up to its end as of now."""
    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = await partitions_of(bootstrap, [topic])
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            kept = []
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    for m in messages:
                        if m.offset >= ends[TopicPartition(m.topic, m.partition)]:
                            continue
                        record = orjson.loads(m.value) if m.value else None
                        if isinstance(record, dict) and wanted(record):
                            kept.append(record)
            return kept
        finally:
            await consumer.stop()
    return run(read())


def latest(records: list[dict[str, Any]], field_name: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        out[record[field_name]] = record
    return out


def order_of(stack: Stack, tank: str, department: str) -> dict[str, Any]:
    """The work order of ``tank``'s incident for ``department``, once dispatch has made it."""
    def mine(record: dict[str, Any]) -> bool:
        return record.get("key") == tank and record.get("department") == department
    found = run(read_until(stack.bootstrap, "dispatch.orders", done=lambda got: bool(got),
                           wanted=mine, timeout=60))
    assert found, f"no {department} order for {tank}"
    return found[-1]


# -- the scenarios ----------------------------------------------------------------------------

def test_red_alert_reaches_the_wall(stack, open_page, tmp_path):
    shown = open_page("duty")
    page = shown.page
    page.wait_for_selector("table.wall")
    latencies = []
    for n in range(5):
        tank = stack.tank(f"W{n}")
        began = time.monotonic()
        stack.level(tank, 97.0, "G0000", "xihu", **({"temp_c": 70.0} if n % 2 else {}))
        row = page.wait_for_selector(f'tr[data-key="{tank}"][data-severity="red"]',
                                     timeout=WAIT_MS)
        latencies.append(time.monotonic() - began)
        assert row.get_attribute("data-severity") == "red"
        assert row.get_attribute("data-state") == "firing"
    print(f"\nproduce → wall (s): {', '.join(f'{s:.3f}' for s in latencies)}; "
          f"median {statistics.median(latencies):.3f}, max {max(latencies):.3f}")
    # the picture once dispatch has put every alert in its incident
    # (a locator, not wait_for_function: the console's CSP refuses the eval that needs)
    playwright_api.expect(page.locator('tr.incident-head[data-incident-id=""]')).to_have_count(
        0, timeout=WAIT_MS)
    screenshot(page, "wall", tmp_path)

    # the filters offer what came after the page opened: the orange model, its rows alone
    page.select_option('select[data-filter="model_id"]', f"browser.{stack.run_id}.warm")
    playwright_api.expect(page.locator('tr[data-severity="red"]')).to_have_count(
        0, timeout=WAIT_MS)
    assert page.locator('tr[data-severity="orange"]').count() == 2
    assert not shown.errors


def test_acknowledgement_from_the_board_stops_the_escalation(stack, open_page, tmp_path):
    tank = stack.tank("ACK")
    shown = open_page("fire-desk", "#/orders")
    page = shown.page
    stack.level(tank, 98.0, "G0001", "xihu")
    card = page.wait_for_selector(f'[data-order-id][data-key="{tank}"]', timeout=WAIT_MS)
    order_id = card.get_attribute("data-order-id")
    assert card.get_attribute("data-department") == "fire_rescue"
    page.click(f'[data-order-id="{order_id}"] [data-action="acknowledged"]')

    feedback = run(read_until(stack.bootstrap, "dispatch.feedback",
                              done=lambda got: bool(got),
                              wanted=lambda r: r.get("order_id") == order_id, timeout=30))
    assert feedback, "the click wrote no feedback"
    assert feedback[0]["status"] == "acknowledged"
    assert feedback[0]["department"] == "fire_rescue"
    assert "fire-desk" in feedback[0]["by"]
    page.wait_for_selector(f'[data-order-id="{order_id}"][data-state="acknowledged"]',
                           timeout=WAIT_MS)
    screenshot(page, "board", tmp_path)

    def acknowledged(record: dict[str, Any]) -> bool:
        return record.get("order_id") == order_id and record.get("state") == "acknowledged"
    at_ack = run(read_until(stack.bootstrap, "dispatch.orders", done=lambda got: bool(got),
                            wanted=acknowledged, timeout=30))[0]
    time.sleep(ACK_LIMIT_S * 2.5)  # two periods past the limit: an escalation would show
    after = read_to_end(stack.bootstrap, "dispatch.orders",
                        lambda r: r.get("order_id") == order_id)[-1]
    assert after["escalations"] == at_ack["escalations"], after["history"]
    assert after["state"] == "acknowledged"
    assert not shown.errors


def _wall_rows(page: Any, run_id: str) -> list[tuple[str, str]]:
    return [(r["id"], r["state"]) for r in page.eval_on_selector_all(
        "tr[data-alert-id]", "rows => rows.map(r => ({id: r.dataset.alertId, "
        "state: r.dataset.state, key: r.dataset.key}))") if r["key"].startswith(run_id)]


def test_console_restart_resynchronises_without_gap_or_duplicate(stack, open_page, tmp_path):
    before = [stack.tank(f"R{n}") for n in range(2)]
    shown = open_page("duty")
    page = shown.page
    for tank in before:
        stack.level(tank, 97.0, "G0100", "xihu")
    for tank in before:
        page.wait_for_selector(f'tr[data-key="{tank}"]', timeout=WAIT_MS)

    stack.kill_console()
    page.wait_for_selector('#live[data-state="stale"]', timeout=WAIT_MS)
    screenshot(page, "wall-stale", tmp_path)
    # while the console is down: a new alert, and one of the shown ones resolves
    down = stack.tank("R2")
    stack.level(down, 99.0, "G0100", "xihu")
    stack.level(before[0], 80.0, "G0100", "xihu")
    run(read_until(stack.bootstrap, "alerts", wanted=lambda r: r.get("key") in (down, before[0]),
                   done=lambda got: {(a["key"], a["state"]) for a in got} >= {
                       (down, "firing"), (before[0], "resolved")}, timeout=60))

    stack.start_console()
    page.wait_for_selector('#live[data-state="live"]', timeout=WAIT_MS)
    page.wait_for_selector(f'tr[data-key="{down}"]', timeout=WAIT_MS)
    page.wait_for_selector(f'tr[data-key="{before[0]}"][data-state="resolved"]',
                           timeout=WAIT_MS)
    alerts = latest(read_to_end(stack.bootstrap, "alerts", stack.ours), "alert_id")
    expected = sorted((a["alert_id"], a["state"]) for a in alerts.values())
    deadline = time.monotonic() + 30
    while (rows := _wall_rows(page, stack.run_id)) and sorted(rows) != expected \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(rows) == len({alert_id for alert_id, _ in rows}), f"shown twice: {rows}"
    assert sorted(rows) == expected
    # the page resumed from its cursor (one snapshot, the first); its only errors are the
    # stream cut by the kill and the connections refused while the server was down
    assert page.evaluate("window.yujing.snapshots") == 1
    assert not [e for e in shown.errors if not any(
        cut in e for cut in ("ERR_CONNECTION_REFUSED", "ERR_INCOMPLETE_CHUNKED_ENCODING"))]
    screenshot(page, "wall-resynchronised", tmp_path)


def test_department_desk_sees_and_acts_on_its_own_orders_only(stack, open_page, tmp_path):
    tank = stack.tank("DEP")
    stack.level(tank, 96.0, "G0009", "binjiang")
    other = order_of(stack, tank, "transport")
    own = order_of(stack, tank, "fire_rescue")
    shown = open_page("fire-desk", "#/orders")
    page = shown.page
    page.wait_for_selector(f'[data-order-id="{own["order_id"]}"]', timeout=WAIT_MS)
    cards = page.eval_on_selector_all("[data-order-id]", "cards => cards.map(c => "
                                      "[c.dataset.orderId, c.dataset.department])")
    assert cards and {department for _, department in cards} == {"fire_rescue"}
    assert other["order_id"] not in {order_id for order_id, _ in cards}
    screenshot(page, "board-department", tmp_path)

    csrf = page.evaluate("window.yujing.csrf")
    refused = page.context.request.post(
        f"{stack.url}/api/orders/{other['order_id']}/feedback",
        headers={"X-CSRF-Token": csrf}, data={"status": "acknowledged"})
    assert refused.status == 404
    snapshot = page.context.request.get(f"{stack.url}/api/snapshot").json()
    assert {o["department"] for o in snapshot["orders"]} == {"fire_rescue"}
    assert other["order_id"] not in {o["order_id"] for o in snapshot["orders"]}
    # the same session without its CSRF token may not act even on its own order
    forged = page.context.request.post(f"{stack.url}/api/orders/{own['order_id']}/feedback",
                                       data={"status": "acknowledged"})
    assert forged.status == 403
    assert not shown.errors


def test_map_shows_the_incident_in_its_district(stack, open_page, tmp_path):
    tank = stack.tank("MAP")
    stack.level(tank, 99.0, "G0010", "binjiang")
    incident_id = order_of(stack, tank, "fire_rescue")["incident_id"]
    shown = open_page("duty", "#/map")
    page = shown.page
    marker = page.wait_for_selector(f'circle.marker[data-incident-id="{incident_id}"]',
                                    timeout=WAIT_MS)
    assert marker.get_attribute("data-district") == "binjiang"
    incidents = latest(read_to_end(stack.bootstrap, "incidents", lambda r: "incident_id" in r),
                       "incident_id")
    open_here = [i for i in incidents.values()
                 if i["district"] == "binjiang" and i["state"] == "open"]
    count = page.wait_for_selector('g[data-district="binjiang"] text.district-count')
    assert count.get_attribute("data-count") == str(len(open_here))
    assert count.text_content() == f"{len(open_here)} open"
    screenshot(page, "map", tmp_path)

    page.click(f'circle.marker[data-incident-id="{incident_id}"]')  # opens its incident
    page.wait_for_selector('[data-detail="incident"]', timeout=WAIT_MS)
    page.wait_for_selector(".timeline tr", timeout=WAIT_MS)
    assert stack.model in page.text_content("#page")
    screenshot(page, "incident", tmp_path)
    assert not shown.errors


def test_scorecards_silences_and_login_pages(stack, open_page, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    login = context.new_page()
    login.goto(f"{stack.url}/?kiosk=1")  # not signed in: sent to the login
    login.wait_for_selector("form.login-form")
    assert login.url.startswith(f"{stack.url}/login?next=")
    screenshot(login, "login", tmp_path)
    login.fill("input[name=name]", "duty")
    login.fill("input[name=password]", PASSWORD)
    login.click("button[type=submit]")
    login.wait_for_selector("body.kiosk #live", timeout=WAIT_MS)  # back to the kiosk wall
    assert login.url == f"{stack.url}/?kiosk=1"
    context.close()

    # An alert of its own, so the model has a scorecard whichever tests ran before this one.
    stack.level(stack.tank("CARD"), 97.0, "G0001", "xihu")
    shown = open_page("duty", "#/scorecards")
    page = shown.page
    page.wait_for_selector(f'table.scorecards tr[data-card="model:{stack.model}"]',
                           timeout=WAIT_MS)
    screenshot(page, "scorecards", tmp_path)
    link = page.wait_for_selector('a[data-report="csv"]', timeout=WAIT_MS)
    report = page.request.get(f"{stack.url}{link.get_attribute('href')}")
    assert report.ok and stack.model in report.text()  # the daily report, as `yujing report`

    page.evaluate("location.hash = '#/silences'")
    matchers = f"key={stack.tank('QUIET')}"
    page.fill("form.silence-form input[name=matchers]", matchers)
    page.fill("form.silence-form input[name=reason]", "sensor under repair")
    page.click("form.silence-form button[type=submit]")
    row = page.wait_for_selector(f'tr[data-silence-id][data-matchers="{matchers}"]',
                                 timeout=WAIT_MS)
    silence_id = row.get_attribute("data-silence-id")
    assert "duty" in row.text_content()
    screenshot(page, "silences", tmp_path)
    page.click(f'tr[data-silence-id="{silence_id}"] [data-action="expire"]')
    page.wait_for_selector(f'tr[data-silence-id="{silence_id}"]', state="detached",
                           timeout=WAIT_MS)
    assert not shown.errors
