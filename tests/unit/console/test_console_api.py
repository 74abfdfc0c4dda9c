"""The console's feed, views and HTTP API without a broker: cursors resume with no gap and no
duplicate (also after a restart that reads the partitions in another order), each desk sees
and acts on its own only, a request without the session's CSRF token changes nothing, and the
stream sends what a page missed, then what comes. The Kafka side is the browser test's
(tests/integration/test_console_browser.py)."""

from __future__ import annotations

import asyncio
import random
import time

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from engine.console.access import ConsoleUser
from engine.console.feed import Feed, parse_cursor
from engine.console.service import ConsoleService
from engine.console.sessions import SessionBook, hash_password
from engine.console.views import snapshot
from engine.console.web import build_app

NOW = time.time()


def order(order_id: str, department: str, district: str = "xihu", state: str = "open") -> bytes:
    return orjson.dumps({
        "order_id": order_id, "incident_id": f"I-{order_id}", "alert_ids": [f"A-{order_id}"],
        "model_ids": ["m"], "department": department, "level": "district",
        "severity": "red", "district": district, "key": f"K-{order_id}",
        "summary": f"order {order_id}", "state": state, "created_at": NOW,
        "ack_due": NOW + 300})


def alert(alert_id: str, departments: list[str], district: str = "xihu",
          state: str = "firing") -> bytes:
    return orjson.dumps({
        "alert_id": alert_id, "model_id": "m", "model_version": 1, "state": state,
        "severity": "red", "departments": departments, "key": f"K-{alert_id}",
        "sources": ["events.hazchem.facility"], "district": district, "first_ts": NOW,
        "last_ts": NOW, "summary": f"alert {alert_id}", "emitted_at": NOW})


RECORDS = [  # (topic, partition, offset, key, value)
    ("alerts", 0, 0, b"A-1", alert("A-1", ["fire_rescue"])),
    ("alerts", 1, 0, b"A-2", alert("A-2", ["transport"], district="binjiang")),
    ("dispatch.orders", 0, 0, b"O-1", order("O-1", "fire_rescue")),
    ("dispatch.orders", 1, 0, b"O-2", order("O-2", "transport", district="binjiang")),
    ("alerts", 0, 1, b"A-1", alert("A-1", ["fire_rescue"], state="resolved")),
    ("dispatch.orders", 0, 1, b"O-1", order("O-1", "fire_rescue", state="acknowledged")),
    ("alerts", 1, 1, b"A-3", alert("A-3", ["transport"], district="binjiang")),
]


def fed(records=RECORDS) -> Feed:
    feed = Feed()
    for record in records:
        feed.add(*record)
    return feed


def test_a_cursor_resumes_with_no_gap_and_no_duplicate_even_after_a_restart():
    feed = fed(RECORDS[:3])
    cursor = parse_cursor(feed.cursor_text())
    assert cursor is not None
    for record in RECORDS[3:]:
        feed.add(*record)
    missed = feed.changes_since(cursor)
    assert [(c.topic, c.partition, c.offset) for c in missed] == [r[:3] for r in RECORDS[3:]]
    # A console restarted reads the partitions interleaved otherwise: per partition, the same.
    shuffled = RECORDS[:]
    rng = random.Random(7)
    by_partition: dict = {}
    for record in shuffled:
        by_partition.setdefault(record[:2], []).append(record)
    restarted = Feed()
    queues = list(by_partition.values())
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        restarted.add(*queue.pop(0))
    again = restarted.changes_since(cursor)
    assert sorted((c.topic, c.partition, c.offset) for c in again) == \
        sorted(r[:3] for r in RECORDS[3:])
    assert restarted.changes_since(parse_cursor(restarted.cursor_text())) == []


def test_a_record_read_twice_is_one_change_and_a_page_too_far_behind_takes_a_snapshot():
    feed = fed()
    assert feed.add(*RECORDS[0]) is None
    small = Feed(kept=2)
    for record in RECORDS:
        small.add(*record)
    assert small.changes_since({}) is None  # the first changes are no longer held
    assert small.changes_since(parse_cursor(small.cursor_text())) == []


def test_each_desk_sees_its_own():
    feed = fed()
    fire = ConsoleUser(name="fire", password_hash="x", role="department", area="fire_rescue")
    binjiang = ConsoleUser(name="bj", password_hash="x", role="district", area="binjiang")
    duty = ConsoleUser(name="duty", password_hash="x")
    assert [o["order_id"] for o in snapshot(feed, fire)["orders"]] == ["O-1"]
    assert sorted(a["alert_id"] for a in snapshot(feed, fire)["alerts"]) == ["A-1"]
    assert sorted(o["order_id"] for o in snapshot(feed, binjiang)["orders"]) == ["O-2"]
    assert sorted(a["alert_id"] for a in snapshot(feed, binjiang)["alerts"]) == ["A-2", "A-3"]
    assert len(snapshot(feed, duty)["orders"]) == 2


class RecordingService(ConsoleService):
    """Records what it would write to Kafka instead of writing it (the web layer's test)."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:1", feed=fed())
        self.caught_up = True
        self.sent: list[tuple[str, str, dict]] = []

    async def _send(self, topic: str, key: str, value: bytes) -> None:
        self.sent.append((topic, key, orjson.loads(value)))


USERS = {
    "duty": ConsoleUser(name="duty", password_hash=hash_password("duty-pw")),
    "fire": ConsoleUser(name="fire", password_hash=hash_password("fire-pw"),
                        role="department", area="fire_rescue"),
}


@pytest.fixture
async def console():
    service = RecordingService()
    app = build_app(service, SessionBook(dict(USERS)), {}, {"districts": [], "towns": []},
                    read=False)
    async with TestClient(TestServer(app)) as client:
        yield client, service


async def signed_in(client: TestClient, name: str, password: str) -> str:
    reply = await client.post("/login", data={"name": name, "password": password},
                              allow_redirects=False)
    assert reply.status == 302 and reply.headers["Location"] == "/"
    return (await (await client.get("/api/me")).json())["csrf"]


async def test_a_wrong_password_signs_no_one_in_and_the_api_wants_a_session(console):
    client, _ = console
    reply = await client.post("/login", data={"name": "duty", "password": "nope"},
                              allow_redirects=False)
    assert reply.headers["Location"].startswith("/login?failed=1")
    assert (await client.get("/api/snapshot")).status == 401
    page = await client.get("/", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"].startswith("/login?next=")


async def test_an_action_needs_the_session_s_csrf_token(console):
    client, service = console
    csrf = await signed_in(client, "duty", "duty-pw")
    body = {"status": "acknowledged"}
    refused = await client.post("/api/orders/O-2/feedback", json=body)
    assert refused.status == 403 and service.sent == []
    wrong = await client.post("/api/orders/O-2/feedback", json=body,
                              headers={"X-CSRF-Token": "forged"})
    assert wrong.status == 403 and service.sent == []
    taken = await client.post("/api/orders/O-2/feedback", json=body,
                              headers={"X-CSRF-Token": csrf})
    assert taken.status == 202
    [(topic, key, sent)] = service.sent
    assert (topic, key, sent["status"], sent["department"], sent["by"]) == (
        "dispatch.feedback", "O-2", "acknowledged", "transport", "duty (console)")


async def test_a_department_desk_cannot_see_or_act_on_another_department_s_orders(console):
    client, service = console
    csrf = await signed_in(client, "fire", "fire-pw")
    headers = {"X-CSRF-Token": csrf}
    other = await client.post("/api/orders/O-2/feedback", json={"status": "acknowledged"},
                              headers=headers)
    assert other.status == 404 and service.sent == []
    own = await client.post("/api/orders/O-1/feedback", json={"note": "crew on the way"},
                            headers=headers)  # O-1 is acknowledged: a note keeps its state
    assert own.status == 202 and service.sent[0][2]["note"] == "crew on the way"
    assert service.sent[0][2]["status"] == "acknowledged"
    shown = await (await client.get("/api/snapshot")).json()
    assert [o["order_id"] for o in shown["orders"]] == ["O-1"]
    assert (await client.get("/api/alerts/A-2")).status == 404
    assert (await client.post("/api/silences", headers=headers, json={
        "matchers": {"key": "K"}, "duration": "1h", "reason": "r"})).status == 403


async def test_silences_are_set_and_expired_by_the_command_centre(console):
    client, service = console
    csrf = await signed_in(client, "duty", "duty-pw")
    headers = {"X-CSRF-Token": csrf}
    bad = await client.post("/api/silences", headers=headers, json={
        "matchers": {"key": "K"}, "duration": "soon", "reason": "r"})
    assert bad.status == 400
    added = await client.post("/api/silences", headers=headers, json={
        "matchers": {"key": "TANK-7"}, "duration": "2h", "reason": "sensor repair"})
    assert added.status == 202
    silence = service.sent[-1][2]
    assert silence["created_by"] == "duty (console)"
    assert 7190 < silence["ends_at"] - silence["starts_at"] <= 7200
    service.feed.add("control.silences", 0, 0, silence["silence_id"].encode(),
                     orjson.dumps(silence))
    expired = await client.post(f"/api/silences/{silence['silence_id']}/expire",
                                headers=headers)
    assert expired.status == 202 and service.sent[-1][2]["ends_at"] <= time.time()


async def read_events(response, count: int) -> list[tuple[str | None, str, dict]]:
    events: list[tuple[str | None, str, dict]] = []
    block: dict[str, str] = {}
    while len(events) < count:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode().rstrip("\n")
        if line:
            name, _, value = line.partition(": ")
            block[name] = value
            continue
        if "event" in block:
            events.append((block.get("id"), block["event"], orjson.loads(block["data"])))
        block = {}
    return events


async def test_the_stream_sends_what_a_page_missed_then_what_comes(console):
    client, service = console
    await signed_in(client, "duty", "duty-pw")
    feed = service.feed
    cursor = "alerts:0:0,alerts:1:0,dispatch.orders:0:0,dispatch.orders:1:0"
    response = await client.get("/api/stream", headers={"Last-Event-ID": cursor})
    missed = await read_events(response, 3)
    assert [(e[1], e[2]["position"]) for e in missed] == [
        ("change", "alerts:0:1"), ("change", "dispatch.orders:0:1"), ("change", "alerts:1:1")]
    assert missed[-1][0] == "alerts:0:1,alerts:1:1,dispatch.orders:0:1,dispatch.orders:1:0"
    service._take("alerts", 0, 2, b"A-4", alert("A-4", ["fire_rescue"]))
    service._take("alerts", 0, 2, b"A-4", alert("A-4", ["fire_rescue"]))  # read twice
    service._take("alerts", 1, 2, b"A-5", alert("A-5", ["transport"]))
    live = await read_events(response, 2)
    assert [e[2]["record"]["alert_id"] for e in live] == ["A-4", "A-5"]
    response.close()
    assert feed.changes_since(parse_cursor(live[-1][0]) or {}) == []


async def test_a_stream_without_a_cursor_starts_with_a_snapshot_of_the_user_s_own(console):
    client, service = console
    await signed_in(client, "fire", "fire-pw")
    response = await client.get("/api/stream")
    [(event_id, name, data)] = await read_events(response, 1)
    assert name == "snapshot" and event_id == service.feed.cursor_text()
    assert [o["order_id"] for o in data["orders"]] == ["O-1"]
    service._take("dispatch.orders", 1, 1, b"O-2", order("O-2", "transport", district="x"))
    service._take("dispatch.orders", 0, 2, b"O-1", order("O-1", "fire_rescue",
                                                         state="resolved"))
    [(_, _, change)] = await read_events(response, 1)  # O-2 is not theirs: not sent
    assert change["record"]["order_id"] == "O-1" and change["record"]["state"] == "resolved"
    response.close()


def test_the_map_has_every_district_and_town_of_the_reference_with_their_grids():
    from pathlib import Path

    from engine.console import model_descriptions
    from engine.console.city_map import city_map

    repo = Path(__file__).resolve().parents[3]
    _, reference = model_descriptions([repo / "rules"])
    drawn = city_map(reference)
    assert len(drawn["districts"]) == 6 and len(drawn["towns"]) == 20
    grids = [g["id"] for t in drawn["towns"] for g in t["grids"]]
    assert len(grids) == len(set(grids)) == 180  # every cell of the simulated city, once
    for town in drawn["towns"]:
        lat0, lon0, lat1, lon1 = (min(p[0] for p in town["polygon"]),
                                  min(p[1] for p in town["polygon"]),
                                  max(p[0] for p in town["polygon"]),
                                  max(p[1] for p in town["polygon"]))
        for grid in town["grids"]:
            a, b, c, d = grid["box"]
            assert lat0 - 1e-9 <= a < c <= lat1 + 1e-9 and lon0 - 1e-9 <= b < d <= lon1 + 1e-9


async def test_the_daily_report_is_the_command_centre_s(console):
    client, _ = console
    await signed_in(client, "duty", "duty-pw")
    table = await client.get("/api/report")
    assert table.status == 200 and "transport" in await table.text()
    csv = await client.get("/api/report?format=csv")
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert (await client.get("/api/report?format=pdf")).status == 400
    await client.post("/logout", headers={"X-CSRF-Token": (await (await client.get(
        "/api/me")).json())["csrf"]})
    await signed_in(client, "fire", "fire-pw")
    assert (await client.get("/api/report")).status == 403


async def test_the_login_goes_on_to_the_page_asked_for_and_only_to_this_console(console):
    client, _ = console
    from yarl import URL

    page = await client.get("/?kiosk=1", allow_redirects=False)
    assert URL(page.headers["Location"]).query["next"] == "/?kiosk=1"
    for asked, went in (("/?kiosk=1", "/?kiosk=1"), ("//evil.example/", "/"),
                        ("https://evil.example/", "/"), ("/\\\\evil", "/")):
        reply = await client.post("/login", data={"name": "duty", "password": "duty-pw",
                                                  "next": asked}, allow_redirects=False)
        assert reply.headers["Location"] == went, asked


async def test_a_note_alone_does_not_acknowledge_an_order_for_the_desk(console):
    client, service = console
    csrf = await signed_in(client, "duty", "duty-pw")
    reply = await client.post("/api/orders/O-2/feedback", json={"note": "seen"},
                              headers={"X-CSRF-Token": csrf})
    assert reply.status == 400 and "not acknowledged yet" in (await reply.json())["error"]
    assert service.sent == []


def test_hostile_records_on_the_console_s_topics_are_refused_not_raised():
    feed = fed()
    for topic in ("alerts", "dispatch.orders", "control.silences", "performance.scorecards"):
        for value in (b"{not json", b"[]", b'{"alert_id": 7}', b"\xff\xfe" * 50):
            assert feed.add(topic, 3, 100 + len(value), b"k", value) is None
    assert sorted(feed.latest_alerts()) == ["A-1", "A-2", "A-3"]
    for text in ("garbage", "alerts:x:1", "alerts:0", "nosuchtopic:0:1", ",,,", "a" * 10_000):
        assert parse_cursor(text) is None


async def test_hostile_requests_get_a_clear_error_and_change_nothing(console):
    client, service = console
    csrf = await signed_in(client, "duty", "duty-pw")
    headers = {"X-CSRF-Token": csrf}
    for body in (b"{not json", b"[]", b'{"status": "exploded"}', b'{"note": 5}',
                 orjson.dumps({"status": "acknowledged", "note": "x" * 5000})):
        reply = await client.post("/api/orders/O-2/feedback", data=body,
                                  headers={**headers, "Content-Type": "application/json"})
        assert reply.status == 400 and "error" in await reply.json(), body[:40]
    for body in (b"{}", b'{"matchers": {}, "reason": "r"}', b'{"matchers": {"k": "v"}}'):
        reply = await client.post("/api/silences", data=body,
                                  headers={**headers, "Content-Type": "application/json"})
        assert reply.status == 400, body
    assert service.sent == []
    # A cursor nobody could have been given: the page gets a snapshot, not an error.
    response = await client.get("/api/stream", headers={"Last-Event-ID": "alerts:0:x" * 100})
    [(_, name, _)] = await read_events(response, 1)
    assert name == "snapshot"
    response.close()


@pytest.mark.parametrize("content", [
    b"[1, 2]", b'"text"', b"null", b"{\x00", b'{"k": [1]}', b'{"k": {"user": ["duty"]}}',
    b'{"k": {"user": "duty", "csrf": 5, "ends_at": 1}}',
    b'{"k": {"user": "duty", "csrf": "c", "ends_at": "soon"}}',
    b'{"k": {"user": "duty", "csrf": "c", "ends_at": true}}'])
def test_a_hostile_sessions_file_signs_nobody_in_and_the_console_starts(tmp_path, content):
    kept = tmp_path / "sessions.json"
    kept.write_bytes(content)
    book = SessionBook(dict(USERS), kept_in=kept)
    assert book.sessions == {}
    session = book.log_in("duty", "duty-pw")
    assert session is not None and book.find(session.token) is not None
    assert SessionBook(dict(USERS), kept_in=kept).find(session.token) is not None


def test_a_sessions_file_keeps_its_good_entries_beside_hostile_ones(tmp_path):
    kept = tmp_path / "sessions.json"
    book = SessionBook(dict(USERS), kept_in=kept)
    session = book.log_in("duty", "duty-pw")
    assert session is not None
    entries = orjson.loads(kept.read_bytes()) | {"x": {"user": "duty", "csrf": 1}, "y": 7}
    kept.write_bytes(orjson.dumps(entries))
    restarted = SessionBook(dict(USERS), kept_in=kept)
    assert restarted.find(session.token) is not None and len(restarted.sessions) == 1
