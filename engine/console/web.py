"""The console's HTTP side (aiohttp, which Faust already brings): pages, the JSON API, and the
live stream as server-sent events.

The stream starts with a snapshot (or, given a cursor — ``Last-Event-ID``, which a browser's
``EventSource`` sends by itself when it reconnects — with the changes after it), then each
change as it is read from Kafka, every event's id the cursor after it. A heartbeat every few
seconds says whether the console's own feed is live, so a page can tell "live" from "stale".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from engine.console import views
from engine.console.feed import Change, Cursor, cursor_text, parse_cursor
from engine.console.service import ConsoleService, audit
from engine.console.sessions import COOKIE, Session, SessionBook
from models.durations import parse_duration
from topics.records import Feedback, FeedbackStatus, Silence

STATIC = Path(__file__).resolve().parent / "static"
HEARTBEAT_S = 3.0
SERVICE = web.AppKey("service", ConsoleService)
SESSIONS = web.AppKey("sessions", SessionBook)
MODELS = web.AppKey("models", dict)
MAP = web.AppKey("map", dict)
SESSION = web.RequestKey("session", Session)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status,
                        content_type="application/json")


def _session(request: web.Request) -> Session | None:
    return request.app[SESSIONS].find(request.cookies.get(COOKIE))


def signed_in(handler: Handler) -> Handler:
    """Pages send an unknown visitor to the login; the API answers 401. A request that changes
    something must carry the session's CSRF token (``X-CSRF-Token``), else 403."""
    async def guarded(request: web.Request) -> web.StreamResponse:
        session = _session(request)
        if session is None:
            if request.path.startswith("/api/"):
                return json_response({"error": "not signed in"}, 401)
            # Back to the page asked for after the login (the wall's ?kiosk=1 included).
            raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
        if request.method not in ("GET", "HEAD") and \
                not session.csrf_ok(request.headers.get("X-CSRF-Token")):
            return json_response({"error": "missing or wrong CSRF token"}, 403)
        request[SESSION] = session
        return await handler(request)
    return guarded


# -- pages and the login -----------------------------------------------------------------------

async def login_page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "login.html")


async def log_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    session = request.app[SESSIONS].log_in(str(form.get("name", "")),
                                           str(form.get("password", "")))
    if session is None:
        await asyncio.sleep(0.5)  # slows guessing; the hash already takes its time
        raise web.HTTPFound(f"/login?failed=1&next={quote(_next_page(form), safe='')}")
    audit.info("%s signed in (%s)", session.user.name, session.user.role)
    response = web.HTTPFound(_next_page(form))
    response.set_cookie(COOKIE, session.token, httponly=True, samesite="Strict",
                        max_age=int(session.ends_at - time.time()))
    raise response


def _next_page(form: Any) -> str:
    """Where the login goes on to: a page of this console only (``/…``, not ``//host``)."""
    page = str(form.get("next") or "/")
    return page if page.startswith("/") and not page.startswith("//") and "\\" not in page \
        else "/"


@signed_in
async def log_out(request: web.Request) -> web.StreamResponse:
    request.app[SESSIONS].log_out(request.cookies.get(COOKIE))
    response = json_response({"signed_out": True})
    response.del_cookie(COOKIE)
    return response


@signed_in
async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


@signed_in
async def me(request: web.Request) -> web.StreamResponse:
    session: Session = request[SESSION]
    user = session.user
    return json_response({"name": user.name, "role": user.role, "area": user.area,
                          "csrf": session.csrf, "silences": user.silences})


# -- reading -----------------------------------------------------------------------------------

@signed_in
async def snapshot(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    return json_response({**views.snapshot(service.feed, request[SESSION].user),
                          "live": service.live})


@signed_in
async def incident(request: web.Request) -> web.StreamResponse:
    story = views.incident_story(request.app[SERVICE].feed, request[SESSION].user,
                                 request.match_info["incident_id"], request.app[MODELS])
    return json_response(story) if story else json_response({"error": "no such incident"}, 404)


@signed_in
async def alert(request: web.Request) -> web.StreamResponse:
    story = views.alert_story(request.app[SERVICE].feed, request[SESSION].user,
                              request.match_info["alert_id"], request.app[MODELS])
    return json_response(story) if story else json_response({"error": "no such alert"}, 404)


@signed_in
async def scorecards(request: web.Request) -> web.StreamResponse:
    return json_response(views.scorecard_history(request.app[SERVICE].feed,
                                                 request[SESSION].user))


REPORT_TYPES = {"table": "text/plain", "csv": "text/csv", "json": "application/json"}


@signed_in
async def daily_report(request: web.Request) -> web.StreamResponse:
    """``yujing report --since 24h`` of the records the console holds (the command centre's:
    it covers every department)."""
    from engine.tracking.report import build_report, render
    from topics.personal_data import mask_text

    if not request[SESSION].user.commands:
        return json_response({"error": "the daily report is the command centre's"}, 403)
    fmt = request.query.get("format", "table")
    if fmt not in REPORT_TYPES:
        return json_response({"error": f"format: one of {', '.join(REPORT_TYPES)}"}, 400)
    report = build_report(request.app[SERVICE].feed.life, 86400.0, time.time())
    return web.Response(text=mask_text(render(report, fmt)),
                        content_type=REPORT_TYPES[fmt], charset="utf-8")


@signed_in
async def city_map(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[MAP])


@signed_in
async def stream(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    user = request[SESSION].user
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 1000\n\n")  # a lost connection is tried again within 1 s
    queue = service.listen()  # before the catch-up below: nothing falls between the two
    try:
        cursor = parse_cursor(request.headers.get("Last-Event-ID")
                              or request.query.get("cursor"))
        missed = service.feed.changes_since(cursor) if cursor is not None else None
        if cursor is None or missed is None:
            shown = views.snapshot(service.feed, user)
            cursor = parse_cursor(shown["cursor"]) or {}
            await _send(response, "snapshot", {**shown, "live": service.live},
                        cursor_text(cursor))
            missed = []
        for change in missed:
            await _send_change(response, service, user, change, cursor)
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                await _send(response, "status", {"live": service.live, "at": time.time()})
                continue
            if change is None:
                break  # this page fell too far behind: it reconnects and resumes
            await _send_change(response, service, user, change, cursor)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        service.stop_listening(queue)
    return response


async def _send_change(response: web.StreamResponse, service: ConsoleService, user: Any,
                       change: Change, cursor: Cursor) -> None:
    position = (change.topic, change.partition)
    if change.offset <= cursor.get(position, -1):
        return  # sent already (in the catch-up)
    cursor[position] = change.offset
    shown = views.shown_change(service.feed, user, change)
    if shown is not None:
        await _send(response, "change", shown, cursor_text(cursor))


async def _send(response: web.StreamResponse, event: str, data: Any,
                event_id: str | None = None) -> None:
    head = f"id: {event_id}\n" if event_id is not None else ""
    await response.write(f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data)
                         + b"\n\n")


# -- acting ------------------------------------------------------------------------------------

class FeedbackForm(BaseModel):
    status: FeedbackStatus | None = None
    note: str | None = Field(None, max_length=2000)


@signed_in
async def order_feedback(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    user = request[SESSION].user
    order = service.feed.orders().get(request.match_info["order_id"])
    if order is None or not user.acts_on_order(order.model_dump(mode="json")):
        return json_response({"error": "no such work order for you"}, 404)
    try:
        form = FeedbackForm.model_validate(await request.json())
    except (ValidationError, ValueError) as exc:
        return json_response({"error": f"not a feedback: {exc}"}, 400)
    if form.status is None and not form.note:
        return json_response({"error": "a status, a note or both"}, 400)
    if form.status is None and order.state == "open":
        # Feedback always carries a status; a note alone would have to acknowledge the order,
        # which is the desk's decision to state, not the console's to guess.
        return json_response({"error": "the order is not acknowledged yet: send the note "
                                       "with status acknowledged"}, 400)
    # A note alone on an order already taken repeats its state with the note (what a
    # department system sends to add a remark).
    status = form.status or order.state
    feedback = Feedback(order_id=order.order_id, status=status,  # type: ignore[arg-type]
                        department=order.department, at=time.time(),
                        by=f"{user.name} (console)", note=form.note)
    await service.send_feedback(feedback)
    return json_response(feedback.model_dump(mode="json"), 202)


class SilenceForm(BaseModel):
    matchers: dict[str, str] = Field(min_length=1)
    duration: str = "1h"
    reason: str = Field(min_length=1, max_length=500)


@signed_in
async def add_silence(request: web.Request) -> web.StreamResponse:
    from engine.silences import new_silence

    user = request[SESSION].user
    if not user.silences:
        return json_response({"error": "only the command centre sets silences"}, 403)
    try:
        form = SilenceForm.model_validate(await request.json())
        seconds = parse_duration(form.duration)
        silence = new_silence(form.matchers, seconds, form.reason, f"{user.name} (console)")
    except (ValidationError, ValueError) as exc:
        return json_response({"error": f"not a silence: {exc}"}, 400)
    await request.app[SERVICE].send_silence(silence, "added")
    return json_response(silence.model_dump(mode="json"), 202)


@signed_in
async def expire_silence(request: web.Request) -> web.StreamResponse:
    user = request[SESSION].user
    if not user.silences:
        return json_response({"error": "only the command centre expires silences"}, 403)
    service = request.app[SERVICE]
    silence = service.feed.silences.get(request.match_info["silence_id"])
    if silence is None:
        return json_response({"error": "no such silence"}, 404)
    ended: Silence = silence.model_copy(update={"ends_at": time.time(),
                                                "created_by": f"{user.name} (console)"})
    await service.send_silence(ended, "expired")
    return json_response(ended.model_dump(mode="json"), 202)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    # Every asset is this server's own: nothing from elsewhere may load or frame the page.
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; "
                                "frame-ancestors 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def build_app(service: ConsoleService, sessions: SessionBook,
              models: dict[str, dict[str, Any]], city: dict[str, Any],
              read: bool = True) -> web.Application:
    """The console's application; ``read=False`` leaves the feed to the caller (tests fill
    it themselves)."""
    app = web.Application(middlewares=[security_headers])
    app[SERVICE], app[SESSIONS], app[MODELS], app[MAP] = service, sessions, models, city
    app.add_routes([
        web.get("/login", login_page), web.post("/login", log_in), web.post("/logout", log_out),
        web.get("/", index),
        web.get("/api/me", me), web.get("/api/snapshot", snapshot),
        web.get("/api/stream", stream), web.get("/api/map", city_map),
        web.get("/api/incidents/{incident_id}", incident),
        web.get("/api/alerts/{alert_id}", alert), web.get("/api/scorecards", scorecards),
        web.get("/api/report", daily_report),
        web.post("/api/orders/{order_id}/feedback", order_feedback),
        web.post("/api/silences", add_silence),
        web.post("/api/silences/{silence_id}/expire", expire_silence),
        web.static("/static", STATIC),
    ])

    async def background(app: web.Application) -> Any:
        task = asyncio.create_task(service.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service.close()

    if read:
        app.cleanup_ctx.append(background)
    return app
