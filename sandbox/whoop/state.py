"""`WhoopSandbox`: the emulator's state, and the Python API tests use (`app.state.sandbox`)."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx2

from sandbox.whoop.data import Delays, Record
from sandbox.whoop.faults import Fault, FaultQueue, RequestRecord
from sandbox.whoop.plan import (
    SPORTS,
    WhoopUser,
    make_workout,
    new_user,
    travel_offset_for,
)
from sandbox.whoop.ratelimit import SlidingWindowLimiter
from sandbox.whoop.settings import WhoopSandboxSettings
from sandbox.whoop.store import Entry, RecordStore
from sandbox.whoop.tokens import SCOPES, TokenStore
from sandbox.whoop.webhooks import WebhookDelivery, WebhookSender
from sandbox.whoop.wire import KINDS, Clock, Kind, parse_tzd, utc_now

_FIRST_USER_ID = 100_001
# A long local run must not grow the log forever; tests never get near this.
_MAX_LOGGED_REQUESTS = 100_000


def _kind(kind: str) -> Kind:
    for known in KINDS:
        if kind == known:
            return known
    raise ValueError(f"unknown record kind {kind!r}; one of {KINDS}")


class WhoopSandbox:
    """Users, tokens, records, faults, rate limits and logs of one emulated WHOOP."""

    def __init__(
        self,
        settings: WhoopSandboxSettings,
        *,
        clock: Clock = utc_now,
        webhook_transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.users: dict[int, WhoopUser] = {}
        refresh_ttl = settings.refresh_token_ttl_s
        self.tokens = TokenStore(
            access_ttl=timedelta(seconds=settings.access_token_ttl_s),
            refresh_ttl=None if refresh_ttl is None else timedelta(seconds=refresh_ttl),
            code_ttl=timedelta(seconds=settings.code_ttl_s),
            reuse_revokes_family=settings.refresh_reuse_revokes_family,
        )
        delays = Delays(
            sleep=timedelta(seconds=settings.sleep_score_delay_s),
            workout=timedelta(seconds=settings.workout_score_delay_s),
        )
        self.store = RecordStore(settings.seed, delays)
        self.limiter = SlidingWindowLimiter(
            settings.rate_limit_per_minute, settings.rate_limit_per_day
        )
        self.faults = FaultQueue()
        self.webhooks = WebhookSender(settings, clock, webhook_transport)
        self.page_secret = secrets.token_bytes(32)
        self.request_log: list[RequestRecord] = []
        # Every request to /token by grant_type, and the ones that got tokens.
        self.token_requests: Counter[str] = Counter()
        self.tokens_issued: Counter[str] = Counter()

    def now(self) -> datetime:
        """The emulator's current time (the injected clock)."""
        return self.clock()

    # Users and tokens

    def add_user(
        self,
        *,
        user_id: int | None = None,
        tz_offset: str | None = None,
        travel_offset: str | None = None,
        history_days: int | None = None,
        **details: str | bool | None,
    ) -> WhoopUser:
        """Create a member; details: email, first_name, last_name, device, body_measurement."""
        if user_id is None:
            user_id = max([_FIRST_USER_ID - 1, *self.users]) + 1
        if user_id in self.users:
            raise ValueError(f"WHOOP user {user_id} exists")
        user = new_user(
            user_id,
            seed=self.settings.seed,
            now=self.now(),
            history_days=self.settings.history_days
            if history_days is None
            else history_days,
            tz_offset=None if tz_offset is None else parse_tzd(tz_offset),
            travel_offset=None if travel_offset is None else parse_tzd(travel_offset),
            **details,
        )
        self.users[user_id] = user
        return user

    def add_user_for_consent(self) -> WhoopUser:
        """A new member for /auth; `settings.travel_share` of them change zone mid-history."""
        user = self.add_user()
        travel = travel_offset_for(user, self.settings.seed, self.settings.travel_share)
        if travel is not None:
            user.travel_offset = travel
            half = max(1, self.settings.history_days // 2)
            user.travel_night = user.first_night + timedelta(days=half)
        return user

    def get_user(self, user_id: int) -> WhoopUser:
        """The member `user_id` (KeyError if unknown)."""
        return self.users[user_id]

    def issue_tokens(
        self, user_id: int, scopes: str | set[str] | frozenset[str] | None = None
    ) -> dict[str, Any]:
        """Tokens as if the user had just consented (all scopes by default); /token's body."""
        user = self.get_user(user_id)
        granted = frozenset(
            scopes.split() if isinstance(scopes, str) else scopes or SCOPES
        )
        if not granted <= SCOPES:
            raise ValueError(f"unknown scopes: {sorted(granted - SCOPES)}")
        user.webhooks_enabled = True
        return self.tokens.issue(user_id, self.settings.client_id, granted, self.now())

    def expire_access_tokens(self, user_id: int) -> None:
        """Expire the user's access tokens now (their refresh tokens stay usable)."""
        self.tokens.expire_access(user_id, self.now())

    def revoke_user(self, user_id: int) -> None:
        """What DELETE /v2/user/access does: revoke all the user's tokens, stop webhooks."""
        self.tokens.revoke_user(user_id, self.settings.client_id)
        self.get_user(user_id).webhooks_enabled = False

    # Records

    def records(self, kind: Kind, user_id: int) -> list[Record]:
        """The truth: every record of `kind` the user has now, newest first."""
        return self.store.records(self.get_user(user_id), _kind(kind), self.now())

    def record(self, kind: Kind, record_id: int | str) -> Record:
        """One record by id (a cycle id for recoveries), whoever owns it; KeyError if none."""
        return self._locate(kind, record_id)[1]

    def _locate(self, kind: Kind, record_id: int | str) -> tuple[Entry, Record]:
        key, now = str(record_id).lower(), self.now()
        for user in self.users.values():
            found = self.store.find(user, _kind(kind), key, now)
            if found is not None:
                return found
        raise KeyError(f"no {kind} {record_id}")

    def rescore(self, kind: Kind, record_id: int | str, **score_changes: Any) -> Record:
        """Score a record, merging `score_changes` into its score, with a newer `updated_at`."""
        entry, record = self._locate(kind, record_id)
        self.store.rescore(entry, record, score_changes, self.now())
        user_id = entry.user.user_id
        if kind in ("sleep", "workout"):
            self.webhooks.queue(user_id, f"{kind}.updated", entry.key)
        if kind == "recovery" or (kind == "sleep" and not entry.nap):
            sleep_id = record.get("sleep_id", entry.key)
            self.webhooks.queue(user_id, "recovery.updated", sleep_id)
        return self.record(kind, record_id)

    def delete_record(self, kind: Kind, record_id: int | str) -> None:
        """Delete a record; deleting a main sleep (or a cycle) deletes its recovery too."""
        entry, _ = self._locate(kind, record_id)
        user_id = entry.user.user_id
        for gone_kind, _key in self.store.delete(entry):
            if gone_kind == "recovery" and entry.night is not None:
                self.webhooks.queue(user_id, "recovery.deleted", entry.night.sleep.id)
            elif gone_kind in ("sleep", "workout"):
                self.webhooks.queue(user_id, f"{gone_kind}.deleted", entry.key)

    def add_workout(
        self,
        user_id: int,
        *,
        start: datetime,
        end: datetime,
        sport_name: str = "running",
        score_state: str | None = None,
    ) -> Record:
        """Log a workout; scored after the usual delay unless `score_state` pins a state."""
        user = self.get_user(user_id)
        sport = next((s for s in SPORTS if s[0] == sport_name), (sport_name, -1))
        workout = make_workout(
            user, start, end, sport, seed=self.settings.seed, forced_state=score_state
        )
        user.extra_workouts.append(workout)
        self.webhooks.queue(user_id, "workout.updated", workout.id)
        entry = Entry("workout", workout.id, workout.start, user, None, workout)
        record = self.store.materialize(entry, self.now())
        assert record is not None
        return record

    # Faults, counters, logs

    def fail_next(
        self,
        path_prefix: str,
        status: int = 500,
        count: int = 1,
        delay_s: float = 0.0,
        on_page: int | None = None,
        *,
        after_handler: bool = False,
    ) -> None:
        """Fail the next `count` requests under `path_prefix` (`/v2/…` = `/developer/v2/…`).

        `on_page=2` fails only second-page requests (the first carrying a nextToken); a `status`
        below 400 only delays; `after_handler` lets the request take effect (a refresh token
        rotates) before its answer is replaced by the failure.
        """
        if path_prefix.startswith(("/v1/", "/v2/")):
            path_prefix = "/developer" + path_prefix
        self.faults.add(
            Fault(path_prefix, status, count, delay_s, on_page, after_handler)
        )

    def log_request(
        self, method: str, path: str, query: dict[str, str], status: int
    ) -> None:
        """Remember one request (the middleware calls this)."""
        self.request_log.append(RequestRecord(method, path, query, status, self.now()))
        if len(self.request_log) > _MAX_LOGGED_REQUESTS:
            del self.request_log[: _MAX_LOGGED_REQUESTS // 2]

    def count_requests(
        self, path_prefix: str = "/developer", method: str | None = None
    ) -> int:
        """Logged requests under `path_prefix` (and with `method`, if given)."""
        return sum(
            1
            for r in self.request_log
            if r.path.startswith(path_prefix) and method in (None, r.method)
        )

    @property
    def peak_requests_per_minute(self) -> int:
        """Most data-API requests admitted within any 60 s window."""
        return self.limiter.peak_per_minute

    @property
    def rate_limited_count(self) -> int:
        """Data-API requests answered 429 because a window was full."""
        return self.limiter.rejected

    def reset_counters(self) -> None:
        """Forget logs, counters, rate-limit windows, pending faults and webhook history."""
        self.request_log.clear()
        self.token_requests.clear()
        self.tokens_issued.clear()
        self.webhooks.log.clear()
        self.limiter.reset()
        self.faults.clear()

    # Webhooks

    @property
    def webhook_log(self) -> list[WebhookDelivery]:
        """Every webhook delivery attempted, oldest first."""
        return self.webhooks.log

    async def send_webhook(
        self,
        user_id: int,
        type: str,
        id: str,
        *,
        trace_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> httpx2.Response | None:
        """POST a signed webhook to the configured URL; None (nothing sent) if access is revoked."""
        return await self.webhooks.send(
            self.get_user(user_id), type, id, trace_id=trace_id, timestamp=timestamp
        )

    async def emit_due_webhooks(self) -> list[WebhookDelivery]:
        """Send `*.updated`/`*.deleted` for what changed since the last call (the lifespan loop)."""
        return await self.webhooks.emit_due(
            list(self.users.values()), delays=self.store.delays
        )
