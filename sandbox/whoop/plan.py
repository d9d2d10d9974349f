"""Deterministic timelines: when each user slept, napped and trained (scores come from `data`).

Everything for one night derives from `random.Random(f"{seed}:{user_id}:{night}")`, so a user
always has the same history and new nights appear as the clock moves, without storing anything.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from sandbox.whoop.wire import parse_tzd, to_ms

OFFSETS = ("-04:00", "-05:00", "+00:00", "+05:30", "+12:00", "-07:00", "+01:00")
SPORTS: tuple[tuple[str, int], ...] = (
    ("running", 0),
    ("cycling", 1),
    ("weightlifting", 45),
    ("yoga", 44),
    ("walking", 63),
    ("swimming", 33),
    ("hiking/rucking", 52),
    ("functional-fitness", 48),
    ("rowing", 18),
    ("hiit", 96),
)
_EPOCH = date(1970, 1, 1)
_UNSCORABLE_SHARE = 0.02


@dataclass(frozen=True)
class Activity:
    """One sleep, nap or workout: its id, bounds and the facts its score derives from."""

    id: str
    start: datetime
    end: datetime
    offset: timedelta
    seed: str
    unscorable: bool = False
    sport: tuple[str, int] | None = None
    # "int", "null" or "absent": legacy v1 ids come in all three shapes in the wild.
    v1_shape: str = "absent"
    v1_id: int = 0
    sport_id_shown: bool = True
    forced_state: str | None = None

    @property
    def created_at(self) -> datetime:
        """WHOOP learns about an activity once it has ended."""
        return self.end


@dataclass(frozen=True)
class Night:
    """Night `night` (local date of the evening): its main sleep, then the day that follows."""

    night: date
    cycle_id: int
    offset: timedelta
    sleep: Activity
    naps: tuple[Activity, ...]
    workouts: tuple[Activity, ...]
    seed: str
    calibrating: bool


@dataclass
class WhoopUser:
    """A WHOOP member of the emulator."""

    user_id: int
    email: str
    first_name: str
    last_name: str
    tz_offset: timedelta
    first_night: date
    device: str = "4.0"
    body: tuple[float, float, int] | None = (1.78, 76.5, 192)
    travel_offset: timedelta | None = None
    travel_night: date | None = None
    webhooks_enabled: bool = False
    extra_workouts: list[Activity] = field(default_factory=list)
    nights: dict[date, Night] = field(default_factory=dict, repr=False)

    def offset_for(self, night: date) -> timedelta:
        """The UTC offset in effect on `night`."""
        travelling = self.travel_night is not None and night >= self.travel_night
        if travelling and self.travel_offset is not None:
            return self.travel_offset
        return self.tz_offset


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _local(night: date, offset: timedelta, hours: float) -> datetime:
    """The UTC instant `hours` after local midnight of `night`."""
    return datetime.combine(night, time(), UTC) - offset + timedelta(hours=hours)


def _jitter_ms(rng: random.Random, at: datetime) -> datetime:
    return to_ms(at + timedelta(milliseconds=rng.randrange(1000)))


def _activity(
    rng: random.Random, start: datetime, minutes: float, offset: timedelta, seed: str
) -> Activity:
    start = _jitter_ms(rng, start)
    end = to_ms(start + timedelta(minutes=minutes))
    return Activity(
        id=_uuid(rng),
        start=start,
        end=end,
        offset=offset,
        seed=seed,
        unscorable=rng.random() < _UNSCORABLE_SHARE,
        v1_id=rng.randrange(10**8, 10**9),
    )


def cycle_id_for(user_id: int, night: date) -> int:
    """Globally unique int64 cycle ids, larger than 2**32 so 32-bit clients break."""
    return user_id * 1_000_000 + (night - _EPOCH).days


def build_night(user: WhoopUser, night: date, seed: int) -> Night:
    """The deterministic plan of one night and the day after it."""
    key = f"{seed}:{user.user_id}:{night.isoformat()}"
    rng = random.Random(key)
    offset = user.offset_for(night)
    onset = _local(night, offset, 22 + rng.uniform(0, 2.5))
    sleep = _activity(rng, onset, rng.uniform(6 * 60, 9 * 60), offset, key + ":sleep")
    sleep = _with_v1(sleep, rng, allow_null=False)
    day = night + timedelta(days=1)
    naps: list[Activity] = []
    workouts: list[Activity] = []
    # On the night before a time-zone change the next onset moves; skip that day's extras.
    if user.offset_for(day) == offset:
        if rng.random() < 0.25:
            nap_start = _local(day, offset, 13 + rng.uniform(0, 2))
            nap = _activity(rng, nap_start, rng.uniform(20, 90), offset, key + ":nap")
            naps.append(_with_v1(nap, rng, allow_null=False))
        count = rng.choices((0, 1, 2), weights=(30, 45, 25))[0]
        slots = (
            ["morning", "evening"]
            if count == 2
            else rng.sample(["morning", "evening"], count)
        )
        for slot in slots:
            if slot == "morning":
                start = sleep.end + timedelta(minutes=rng.uniform(30, 90))
            else:
                start = _local(day, offset, 17 + rng.uniform(0, 2.5))
            workout = _activity(
                rng, start, rng.uniform(20, 100), offset, f"{key}:{slot}"
            )
            workouts.append(_as_workout(workout, rng))
    return Night(
        night=night,
        cycle_id=cycle_id_for(user.user_id, night),
        offset=offset,
        sleep=sleep,
        naps=tuple(naps),
        workouts=tuple(workouts),
        seed=key,
        calibrating=(night - user.first_night).days < 4,
    )


def _with_v1(activity: Activity, rng: random.Random, *, allow_null: bool) -> Activity:
    weights = (30, 30, 40) if allow_null else (40, 0, 60)
    shape = rng.choices(("int", "null", "absent"), weights=weights)[0]
    return replace(activity, v1_shape=shape)


def _as_workout(activity: Activity, rng: random.Random) -> Activity:
    shaped = _with_v1(activity, rng, allow_null=True)
    return replace(shaped, sport=rng.choice(SPORTS), sport_id_shown=rng.random() < 0.7)


def night_of(user: WhoopUser, night: date, seed: int) -> Night:
    """The cached plan of `night` for `user`."""
    plan = user.nights.get(night)
    if plan is None:
        plan = user.nights[night] = build_night(user, night, seed)
    return plan


def nights_started(user: WhoopUser, now: datetime, seed: int) -> list[Night]:
    """Every night of the user's history whose sleep has begun by `now`, oldest first."""
    last = now.astimezone(UTC).date() + timedelta(days=1)
    nights: list[Night] = []
    current = user.first_night
    while current <= last:
        plan = night_of(user, current, seed)
        if plan.sleep.start > now:
            break
        nights.append(plan)
        current += timedelta(days=1)
    return nights


def make_workout(
    user: WhoopUser,
    start: datetime,
    end: datetime,
    sport: tuple[str, int],
    *,
    seed: int,
    forced_state: str | None = None,
) -> Activity:
    """A workout added by a test, with the user's offset at its start."""
    rng = random.Random(f"{seed}:{user.user_id}:extra:{len(user.extra_workouts)}")
    night = (start + user.tz_offset).date()
    return Activity(
        id=_uuid(rng),
        start=to_ms(start),
        end=to_ms(end),
        offset=user.offset_for(night),
        seed=f"{seed}:{user.user_id}:extra:{start.isoformat()}",
        sport=sport,
        v1_shape="absent",
        forced_state=forced_state,
    )


_FIRST_NAMES = ("Ada", "Grace", "Alan", "Linus", "Maya", "Kenji", "Amara", "Luis")
_LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Okafor", "Sato", "Silva", "Nguyen")


def new_user(
    user_id: int,
    *,
    seed: int,
    now: datetime,
    history_days: int,
    tz_offset: timedelta | None = None,
    travel_offset: timedelta | None = None,
    **details: str | bool | None,
) -> WhoopUser:
    """A member whose unset details (name, zone, device, body) derive from seed and id."""
    rng = random.Random(f"{seed}:{user_id}:profile")
    first = str(details.get("first_name") or rng.choice(_FIRST_NAMES))
    last = str(details.get("last_name") or rng.choice(_LAST_NAMES))
    offset = tz_offset if tz_offset is not None else parse_tzd(rng.choice(OFFSETS))
    # One extra night so at least `history_days` cycles exist whatever the time of day.
    first_night = (now + offset).date() - timedelta(days=history_days + 1)
    body = (
        round(rng.uniform(1.55, 1.95), 4),
        round(rng.uniform(50, 110), 4),
        rng.randint(170, 205),
    )
    has_body = details.get("body_measurement")
    user = WhoopUser(
        user_id=user_id,
        email=str(
            details.get("email") or f"{first}.{last}.{user_id}@example.com".lower()
        ),
        first_name=first,
        last_name=last,
        tz_offset=offset,
        first_night=first_night,
        device=str(details.get("device") or ("4.0" if rng.random() < 0.7 else "3.0")),
        body=body if (rng.random() > 0.1 if has_body is None else has_body) else None,
    )
    if travel_offset is not None:
        user.travel_offset = travel_offset
        user.travel_night = first_night + timedelta(days=max(1, history_days // 2))
    return user


def travel_offset_for(user: WhoopUser, seed: int, share: float) -> timedelta | None:
    """For a `share` of users, a second zone at most 10 h from home (else the nights overlap)."""
    rng = random.Random(f"{seed}:{user.user_id}:travel")
    if rng.random() >= share:
        return None
    home = user.tz_offset
    options = [parse_tzd(o) for o in OFFSETS]
    return rng.choice(
        [o for o in options if o != home and abs(o - home) <= timedelta(hours=10)]
    )
