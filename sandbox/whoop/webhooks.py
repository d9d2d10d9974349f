"""WHOOP v2 webhooks: payload, signature, delivery, and which events fall due as time passes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx2
import structlog

from sandbox.whoop.data import Delays
from sandbox.whoop.plan import Activity, WhoopUser, nights_started
from sandbox.whoop.settings import WhoopSandboxSettings
from sandbox.whoop.wire import Clock, epoch_ms

log = structlog.get_logger()

WEBHOOK_TYPES = frozenset(
    f"{kind}.{change}"
    for kind in ("workout", "sleep", "recovery")
    for change in ("updated", "deleted")
)
USER_AGENT = "WHOOP-Webhooks/sandbox"
# An activity's events are due at creation and at scoring; look this far behind `since` for them.
_LOOKBACK = timedelta(days=2)


@dataclass(frozen=True)
class WebhookEvent:
    """One notification: which user, what changed, which record (a UUID)."""

    user_id: int
    type: str
    id: str


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to deliver an event; `status` is None when the receiver could not be reached."""

    event: WebhookEvent
    trace_id: str
    timestamp_ms: str
    status: int | None
    at: datetime


def sign(client_secret: str, timestamp_ms: str, body: bytes) -> str:
    """base64(HMAC-SHA256(client secret, timestamp + raw body)), as WHOOP signs webhooks."""
    mac = hmac.new(client_secret.encode(), timestamp_ms.encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def encode_event(event: WebhookEvent, trace_id: str) -> bytes:
    """The v2 JSON body, compact, as the exact bytes that get signed."""
    payload = {
        "user_id": event.user_id,
        "id": event.id,
        "type": event.type,
        "trace_id": trace_id,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


async def post(
    url: str,
    body: bytes,
    *,
    signature: str,
    timestamp_ms: str,
    transport: httpx2.AsyncBaseTransport | None,
    timeout_s: float,
) -> httpx2.Response:
    """POST one signed webhook."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-WHOOP-Signature": signature,
        "X-WHOOP-Signature-Timestamp": timestamp_ms,
    }
    async with httpx2.AsyncClient(transport=transport, timeout=timeout_s) as client:
        return await client.post(url, content=body, headers=headers)


def _activity_events(
    user: WhoopUser,
    activity: Activity,
    kinds: tuple[str, ...],
    delay: timedelta,
    window: tuple[datetime, datetime],
) -> list[WebhookEvent]:
    since, now = window
    moments = (activity.created_at, activity.end + delay)
    if not any(since < moment <= now for moment in moments):
        return []
    return [
        WebhookEvent(user.user_id, f"{kind}.updated", activity.id) for kind in kinds
    ]


def due_events(
    user: WhoopUser, *, seed: int, delays: Delays, since: datetime, now: datetime
) -> list[WebhookEvent]:
    """`*.updated` events for activities created or scored in (since, now]."""
    window = (since, now)
    events: list[WebhookEvent] = []
    for night in nights_started(user, now, seed):
        if night.sleep.start < since - _LOOKBACK:
            continue
        kinds = ("sleep",) if night.sleep.unscorable else ("sleep", "recovery")
        events += _activity_events(user, night.sleep, kinds, delays.sleep, window)
        for nap in night.naps:
            events += _activity_events(user, nap, ("sleep",), delays.sleep, window)
        for workout in night.workouts:
            events += _activity_events(
                user, workout, ("workout",), delays.workout, window
            )
    for workout in user.extra_workouts:
        events += _activity_events(user, workout, ("workout",), delays.workout, window)
    return events


class WebhookSender:
    """Signs and posts webhooks to the configured URL; remembers deliveries and queued events."""

    def __init__(
        self,
        settings: WhoopSandboxSettings,
        clock: Clock,
        transport: httpx2.AsyncBaseTransport | None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.transport = transport
        self.log: list[WebhookDelivery] = []
        self._queued: list[WebhookEvent] = []
        self._checked_at = clock()

    def queue(self, user_id: int, type_: str, record_id: str) -> None:
        """Remember a change for the next `emit_due` (only when a URL is configured)."""
        if self.settings.webhook_url is not None:
            self._queued.append(WebhookEvent(user_id, type_, record_id))

    async def send(
        self,
        user: WhoopUser,
        event_type: str,
        record_id: str,
        *,
        trace_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> httpx2.Response | None:
        """POST one signed event; None (nothing sent) when the user revoked access."""
        if event_type not in WEBHOOK_TYPES:
            raise ValueError(f"unknown webhook type {event_type!r}")
        url = self.settings.webhook_url
        if url is None:
            raise RuntimeError("no webhook URL configured (SANDBOX_WHOOP_WEBHOOK_URL)")
        if not user.webhooks_enabled:
            return None
        event = WebhookEvent(user.user_id, event_type, record_id)
        trace = trace_id or str(uuid.uuid4())
        body = encode_event(event, trace)
        stamp = str(epoch_ms(timestamp or self.clock()))
        secret = self.settings.client_secret.get_secret_value()
        status: int | None = None
        try:
            response = await post(
                url,
                body,
                signature=sign(secret, stamp, body),
                timestamp_ms=stamp,
                transport=self.transport,
                timeout_s=self.settings.webhook_timeout_s,
            )
            status = response.status_code
        finally:
            self.log.append(WebhookDelivery(event, trace, stamp, status, self.clock()))
        return response

    async def emit_due(
        self, users: Iterable[WhoopUser], *, delays: Delays
    ) -> list[WebhookDelivery]:
        """Send what happened since the last call: records created or scored, test changes."""
        now, since = self.clock(), self._checked_at
        events, self._queued = self._queued, []
        by_id = {}
        for user in users:
            by_id[user.user_id] = user
            if user.webhooks_enabled:
                events += due_events(
                    user, seed=self.settings.seed, delays=delays, since=since, now=now
                )
        self._checked_at = now  # tests may move the clock backwards; follow it
        before = len(self.log)
        for event in dict.fromkeys(events):
            try:
                await self.send(by_id[event.user_id], event.type, event.id)
            except httpx2.HTTPError as exc:
                log.warning(
                    "sandbox.whoop.webhook_failed", type=event.type, error=str(exc)
                )
        return self.log[before:]
