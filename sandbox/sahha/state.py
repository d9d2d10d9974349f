"""The emulated Sahha account: profiles, tokens, injected faults, request log and test hooks."""

from __future__ import annotations

import copy
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qsl

from sandbox.sahha.catalog import SCORE_TYPES
from sandbox.sahha.data import (
    DayData,
    SahhaProfile,
    default_device,
    default_tz_offset,
    generate_day,
)
from sandbox.sahha.settings import EmptyAs, SahhaSandboxSettings
from sandbox.sahha.tokens import TokenStore
from sandbox.sahha.wire import JsonObject, stable_uuid, utc_z

Clock = Callable[[], datetime]
TzOffset = str | timedelta | timezone


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request the emulator answered."""

    method: str
    path: str
    query: str  # raw, as sent: shows whether a client percent-encoded its `+`
    status: int

    @property
    def params(self) -> list[tuple[str, str]]:
        """The decoded query pairs, repeated keys kept in order."""
        return parse_qsl(self.query, keep_blank_values=True)


@dataclass(slots=True)
class Fault:
    """An injected failure waiting for requests under `path_prefix`."""

    path_prefix: str
    status: int
    remaining: int
    delay_s: float


def to_timezone(offset: TzOffset) -> timezone:
    """A fixed offset from `+12:00`, `-04:00`, `Z`, a timedelta or a timezone."""
    if isinstance(offset, timezone):
        return offset
    if isinstance(offset, timedelta):
        return timezone(offset)
    parsed = datetime.fromisoformat(f"2000-01-01T00:00:00{offset}").tzinfo
    if not isinstance(parsed, timezone):
        raise ValueError(f"not a UTC offset: {offset!r}")
    return parsed


class SahhaSandbox:
    """In-memory state of the emulated account: `app.state.sandbox`, the Python API tests use."""

    def __init__(self, settings: SahhaSandboxSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.empty_as: EmptyAs = settings.empty_as
        self.account_id = stable_uuid("account", settings.client_id)
        self.request_log: list[LoggedRequest] = []
        self.token_requests = 0
        self._profiles: dict[str, SahhaProfile] = {}
        self._used_ids: set[str] = set()
        self.tokens = TokenStore(clock, settings.token_ttl_s, self.account_id)
        self._faults: list[Fault] = []
        self._days: dict[tuple[SahhaProfile, date], DayData | None] = {}

    # --- test hooks -------------------------------------------------------------------------

    def add_profile(
        self,
        external_id: str,
        *,
        tz_offset: TzOffset | None = None,
        with_vitals: bool = True,
        days_without_data: Iterable[date] | None = None,
        with_data: bool = True,
    ) -> SahhaProfile:
        """Create (or replace) a profile with data; `with_vitals=False` is a phone-only user.

        `days_without_data=None` leaves about one day in twenty empty at random; an iterable
        (even an empty one) makes exactly those local days empty.
        """
        profile = self._new_profile(
            external_id,
            tz_offset=None if tz_offset is None else to_timezone(tz_offset),
            with_vitals=with_vitals,
            with_data=with_data,
            days_without_data=None
            if days_without_data is None
            else frozenset(days_without_data),
        )
        self._profiles[external_id] = profile
        self._used_ids.add(external_id)
        return profile

    def get_profile(self, external_id: str) -> SahhaProfile | None:
        """The profile, created on first sight when auto profiles are on; None when unknown."""
        profile = self._profiles.get(external_id)
        if profile is None and self.settings.auto_profiles:
            profile = self._new_profile(external_id)
            self._profiles[external_id] = profile
        return profile

    def scores(
        self,
        external_id: str,
        start_date: date,
        end_date: date,
        *,
        types: Iterable[str] | None = None,
    ) -> list[JsonObject]:
        """The truth: visible scores of local days start..end (inclusive), oldest first."""
        wanted = set(SCORE_TYPES if types is None else types)
        days = self.visible_days(self._require(external_id), start_date, end_date)
        return [
            copy.deepcopy(s.body) for d in days for s in d.scores if s.type in wanted
        ]

    def biomarkers(
        self,
        external_id: str,
        start_date: date,
        end_date: date,
        *,
        categories: Iterable[str] | None = None,
        types: Iterable[str] | None = None,
    ) -> list[JsonObject]:
        """The truth: visible biomarkers of local days start..end, by CONTRACT §6 day rules."""
        cats = None if categories is None else set(categories)
        kinds = None if types is None else set(types)
        days = self.visible_days(self._require(external_id), start_date, end_date)
        return [
            copy.deepcopy(b.body)
            for d in days
            for b in d.biomarkers
            if (cats is None or b.category in cats)
            and (kinds is None or b.type in kinds)
        ]

    def fail_next(
        self, path_prefix: str, status: int = 500, count: int = 1, delay_s: float = 0.0
    ) -> None:
        """Answer the next `count` requests under `path_prefix` with `status`, after `delay_s`."""
        if not 400 <= status <= 599 or count < 1 or delay_s < 0:
            raise ValueError(
                "fail_next needs a 4xx/5xx status, count >= 1 and delay_s >= 0"
            )
        self._faults.append(Fault(path_prefix, status, count, delay_s))

    def expire_tokens(self) -> None:
        """Make every token issued so far invalid, as if its 24 h had run out."""
        self.tokens.expire_all()

    # --- used by the routes -----------------------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        """The injected fault this request consumes, if any."""
        for fault in self._faults:
            if path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def credentials_match(self, client_id: str, client_secret: str) -> bool:
        """Whether the pair is this account's; compared in constant time."""
        secret = self.settings.client_secret.get_secret_value()
        id_ok = hmac.compare_digest(
            client_id.encode(), self.settings.client_id.encode()
        )
        secret_ok = hmac.compare_digest(client_secret.encode(), secret.encode())
        return id_ok and secret_ok

    def external_id_used(self, external_id: str) -> bool:
        """Whether the externalId was registered or added already."""
        return external_id in self._used_ids

    def register_profile(self, external_id: str) -> JsonObject:
        """Register a profile as `POST oauth/profile/register` does; answer its token response."""
        # A freshly registered profile has sent nothing yet, unless every profile has data.
        profile = replace(
            self._new_profile(external_id, with_data=self.settings.auto_profiles),
            created_at=self.clock().replace(microsecond=0),
        )
        self._profiles[external_id] = profile
        self._used_ids.add(external_id)
        return self.tokens.issue_profile_token(profile.profile_id)

    def profile_body(self, profile: SahhaProfile) -> JsonObject:
        """The account-lookup profile object."""
        last = self._last_ready_at(profile)
        return {
            "profileId": profile.profile_id,
            "accountId": self.account_id,
            "externalId": profile.external_id,
            "sdkId": profile.sdk_id,
            "sdkVersion": profile.sdk_version,
            "deviceType": profile.device_type,
            "dataLastReceivedAtUtc": None if last is None else utc_z(last),
            "createdAtUtc": utc_z(profile.created_at),
            "isSampleProfile": False,
        }

    def local_today(self, profile: SahhaProfile) -> date:
        """Today in the profile's own time zone."""
        return self.clock().astimezone(profile.tz_offset).date()

    def visible_days(
        self, profile: SahhaProfile, first: date, last: date
    ) -> list[DayData]:
        """Days first..last that have data and whose data was ready by now, oldest first."""
        today = self.local_today(profile)
        first = max(first, today - timedelta(days=self.settings.history_days))
        last = min(last, today)
        now = self.clock()
        days: list[DayData] = []
        day = first
        while day <= last:
            data = self._day(profile, day)
            if data is not None and data.ready_at <= now:
                days.append(data)
            day += timedelta(days=1)
        return days

    # --- internals --------------------------------------------------------------------------

    def _require(self, external_id: str) -> SahhaProfile:
        profile = self.get_profile(external_id)
        if profile is None:
            raise LookupError(f"unknown Sahha profile {external_id!r}")
        return profile

    def _day(self, profile: SahhaProfile, day: date) -> DayData | None:
        key = (profile, day)
        if key not in self._days:
            self._days[key] = generate_day(self.settings.seed, profile, day)
        return self._days[key]

    def _last_ready_at(self, profile: SahhaProfile) -> datetime | None:
        today = self.local_today(profile)
        days = self.visible_days(
            profile, today - timedelta(days=self.settings.history_days), today
        )
        return days[-1].ready_at if days else None

    def _new_profile(
        self,
        external_id: str,
        *,
        tz_offset: timezone | None = None,
        with_vitals: bool = True,
        with_data: bool = True,
        days_without_data: frozenset[date] | None = None,
    ) -> SahhaProfile:
        sdk_id, sdk_version, device_type = default_device(external_id)
        created = self.clock() - timedelta(days=self.settings.history_days + 1)
        return SahhaProfile(
            external_id=external_id,
            profile_id=stable_uuid(self.settings.seed, "profile", external_id),
            tz_offset=default_tz_offset(external_id)
            if tz_offset is None
            else tz_offset,
            created_at=created.replace(microsecond=0),
            with_vitals=with_vitals,
            with_data=with_data,
            days_without_data=days_without_data,
            sdk_id=sdk_id if with_data else None,
            sdk_version=sdk_version if with_data else None,
            device_type=device_type if with_data else None,
        )
