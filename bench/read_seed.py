"""Benchmark 2's data set: 10,000 connected users x 365 days of WHOOP records in PostgreSQL.

The database `bench_reads` lives on the server of `BENCH_DATABASE_URL` (else `TEST_DATABASE_URL`,
else the local default). It is migrated with the project's migrations and seeded with asyncpg
COPY, one day of every user at a time, the order in which scheduled syncs would write it, so a
user's records are spread over the tables as in production rather than packed together. A marker
row records what was seeded: a later run reuses the data and only marks every sync as just done.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # ships no type stubs
from sqlalchemy import Table
from sqlalchemy.engine import make_url

from whoop_service.auth.crypto import TokenCipher
from whoop_service.db import tables
from whoop_service.db.migrate import upgrade_to_head_async
from whoop_service.settings import DEFAULT_SCOPES

DATABASE = "bench_reads"
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
USERS = 10_000
DAYS = 365
# A fixed Fernet key: the data set is reused across runs and holds no real secret.
TOKEN_KEY = "YmVuY2gtcmVhZC1wYXRoLWZpeGVkLWtleS0zMmJ5dGU="
# Bump when the shape of the seeded rows changes: the next run then seeds again.
LAYOUT_VERSION = 1
OFFSETS = (
    "-08:00",
    "-05:00",
    "-03:00",
    "+00:00",
    "+01:00",
    "+02:00",
    "+05:30",
    "+09:00",
)
SPORTS = (
    "running",
    "cycling",
    "functional-fitness",
    "weightlifting",
    "yoga",
    "swimming",
)
NAP_SHARE = 0.15
WORKOUT_SHARE = 0.6
# Rows below are tuples in the tables' column order: a column added later fails the COPY loudly.
COLUMNS = {
    t.name: [c.name for c in t.columns]
    for t in (tables.cycles, tables.recoveries, tables.sleeps, tables.workouts)
}


@dataclass(frozen=True)
class DataSet:
    """What the benchmark reads: users, the seeded local dates, and how the data got there."""

    database_url: str
    users: list[str]
    first_date: date
    last_date: date
    seeded: bool
    seed_s: float
    rows: int
    server_version: str


def user_id(index: int) -> str:
    return f"bench-user-{index:05d}"


def server_url() -> str:
    """The SQLAlchemy URL of the server (any database on it)."""
    return (
        os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("TEST_DATABASE_URL")
        or DEFAULT_SERVER
    )


def database_url() -> str:
    """The SQLAlchemy URL of `bench_reads` on that server."""
    url = make_url(server_url()).set(database=DATABASE)
    return url.render_as_string(hide_password=False)


def _dsn(sqlalchemy_url: str) -> str:
    """The same URL for asyncpg itself."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def prepare() -> DataSet:
    """Create, migrate and (unless already done) seed the database; mark every sync fresh."""
    server = await asyncpg.connect(_dsn(server_url()))
    try:
        exists = await server.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", DATABASE
        )
        if not exists:
            await server.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await server.close()
    url = database_url()
    await upgrade_to_head_async(url)
    conn = await asyncpg.connect(_dsn(url))
    try:
        marker = await _marker(conn)
        seeded = marker is None
        if marker is None:
            marker = await _seed(conn)
        # Fresh on every run (the last run's forced refresh failed one user's on purpose):
        # the read path then has no reason to call WHOOP.
        await conn.execute(
            "UPDATE whoop.sync_state SET last_sync_at = now(), last_success_at = now(),"
            " status = 'success', error = NULL, failures = 0"
        )
        await conn.execute(
            "UPDATE whoop.connections SET status = 'connected', reauth_reason = NULL"
            " WHERE status <> 'connected'"
        )
        version = str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()
    return DataSet(
        database_url=url,
        users=[user_id(i) for i in range(USERS)],
        first_date=marker["first_date"],
        last_date=marker["first_date"] + timedelta(days=DAYS - 1),
        seeded=seeded,
        seed_s=marker["seed_s"],
        rows=marker["rows"],
        server_version=version,
    )


async def _marker(conn: asyncpg.Connection) -> asyncpg.Record | None:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS public.bench_seed (users int NOT NULL,"
        " days int NOT NULL, layout int NOT NULL, first_date date NOT NULL,"
        " rows bigint NOT NULL, seed_s float NOT NULL, seeded_at timestamptz NOT NULL)"
    )
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM public.bench_seed WHERE users = $1 AND days = $2 AND layout = $3",
        USERS,
        DAYS,
        LAYOUT_VERSION,
    )
    return row


async def _seed(conn: asyncpg.Connection) -> asyncpg.Record:
    """Replace whatever a partial or older seed left with the full data set."""
    started = time.monotonic()
    await conn.execute(
        "TRUNCATE public.bench_seed, whoop.cycles, whoop.recoveries, whoop.sleeps,"
        " whoop.workouts, whoop.sync_state, whoop.connections, whoop.jobs"
    )
    # Loading only: a crash loses the seed, which the missing marker then redoes.
    await conn.execute("SET synchronous_commit = off")
    now = datetime.now(UTC).replace(microsecond=0)
    first = now.date() - timedelta(days=DAYS)
    await _copy(conn, tables.connections, _connections(now))
    rows = 0
    for records in _days(first):
        for table, batch in records.items():
            await conn.copy_records_to_table(
                table, schema_name=tables.SCHEMA, records=batch, columns=COLUMNS[table]
            )
            rows += len(batch)
    await _copy(conn, tables.sync_state, _sync_states(now))
    await conn.execute(
        "VACUUM ANALYZE"
    )  # so autovacuum does not run during the timings
    await conn.execute(
        "INSERT INTO public.bench_seed VALUES ($1, $2, $3, $4, $5, $6, now())",
        USERS,
        DAYS,
        LAYOUT_VERSION,
        first,
        rows,
        time.monotonic() - started,
    )
    marker = await _marker(conn)
    assert marker is not None
    return marker


async def _copy(
    conn: asyncpg.Connection, table: Table, records: list[tuple[Any, ...]]
) -> None:
    await conn.copy_records_to_table(
        table.name,
        schema_name=tables.SCHEMA,
        records=records,
        columns=[c.name for c in table.columns],
    )


def _connections(now: datetime) -> list[tuple[Any, ...]]:
    """Connected users with tokens encrypted as the service stores them."""
    cipher = TokenCipher([TOKEN_KEY])
    out = []
    for i in range(USERS):
        uid = user_id(i)
        out.append(
            (
                uid,
                _whoop_user(i),
                "connected",
                DEFAULT_SCOPES,
                cipher.encrypt(uid, "access", f"access-{uuid.uuid4().hex}"),
                cipher.encrypt(uid, "refresh", f"refresh-{uuid.uuid4().hex}"),
                now + timedelta(hours=1),
                1,
                None,
                now - timedelta(days=DAYS + 1),
                now,
                now,
            )
        )
    return out


def _sync_states(now: datetime) -> list[tuple[Any, ...]]:
    return [
        (user_id(i), kind, now, now, now, "success", DAYS, None, 0)
        for i in range(USERS)
        for kind in ("cycle", "recovery", "sleep", "workout")
    ]


def _whoop_user(index: int) -> int:
    return 10_000_000 + index


def _z(instant: datetime) -> str:
    """An instant as WHOOP writes it."""
    return instant.isoformat()[:19] + ".000Z"  # strftime is the seed's slowest step


def _days(first: date) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """Every user's records, one day at a time (oldest first)."""
    rng = random.Random(2)
    offsets = [OFFSETS[i % len(OFFSETS)] for i in range(USERS)]
    shift = [_offset(o) for o in offsets]
    # Sleep onset of the night before each day, in local minutes after 21:30.
    onset = [_below(rng, 120) for _ in range(USERS)]
    for d in range(DAYS):
        day = first + timedelta(days=d)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        tomorrow_onset = [_below(rng, 120) for _ in range(USERS)]
        out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS}
        for i in range(USERS):
            # Local wall-clock time `minutes` after local midnight of `day`, in UTC.
            base = midnight - shift[i]
            start = base + timedelta(minutes=onset[i] - 150)
            end = (
                None
                if d == DAYS - 1
                else base + timedelta(minutes=tomorrow_onset[i] + 1290)
            )
            _user_day(out, rng, i, d, offsets[i], base, start, end)
        onset = tomorrow_onset
        yield out


def _offset(text: str) -> timedelta:
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))


def _user_day(
    out: dict[str, list[tuple[Any, ...]]],
    rng: random.Random,
    i: int,
    d: int,
    tz: str,
    base: datetime,
    start: datetime,
    end: datetime | None,
) -> None:
    """One user's cycle, recovery, main sleep, maybe a nap and a workout, on one local day."""
    uid, wu = user_id(i), _whoop_user(i)
    cycle_id = 1_000_000_000 + d * USERS + i
    wake = base + timedelta(minutes=390 + _below(rng, 90))
    sleep_id = _uuid(rng)
    out["cycles"].append(_cycle(rng, cycle_id, uid, wu, tz, start, end, wake))
    out["sleeps"].append(_sleep(rng, sleep_id, cycle_id, uid, wu, tz, start, wake))
    out["recoveries"].append(_recovery(rng, cycle_id, sleep_id, uid, wu, wake))
    if rng.random() < NAP_SHARE:
        nap_start = base + timedelta(minutes=810 + _below(rng, 120))
        out["sleeps"].append(
            _sleep(rng, _uuid(rng), cycle_id, uid, wu, tz, nap_start, None, nap=True)
        )
    if rng.random() < WORKOUT_SHARE:
        begin = base + timedelta(minutes=1020 + _below(rng, 90))
        out["workouts"].append(_workout(rng, _uuid(rng), uid, wu, tz, begin))


def _below(rng: random.Random, n: int) -> int:
    """`rng.randrange(n)`, a third of the cost; uniform enough for made-up data."""
    return int(rng.random() * n)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _cycle(
    rng: random.Random,
    cycle_id: int,
    uid: str,
    wu: int,
    tz: str,
    start: datetime,
    end: datetime | None,
    wake: datetime,
) -> tuple[Any, ...]:
    written = wake + timedelta(minutes=20)
    strain, kj = round(4 + rng.random() * 14, 4), round(5000 + rng.random() * 7000, 1)
    avg_hr, max_hr = 58 + _below(rng, 25), 130 + _below(rng, 60)
    end_json = f',"end":"{_z(end)}"' if end else ""
    raw = (
        f'{{"id":{cycle_id},"user_id":{wu},"created_at":"{_z(start)}",'
        f'"updated_at":"{_z(written)}","start":"{_z(start)}"{end_json},'
        f'"timezone_offset":"{tz}","score_state":"SCORED","score":{{"strain":{strain},'
        f'"kilojoule":{kj},"average_heart_rate":{avg_hr},"max_heart_rate":{max_hr}}}}}'
    )
    common = (uid, wu, "SCORED", start, written, raw, written)
    return (cycle_id, *common, start, end, tz, strain, kj, avg_hr, max_hr)


def _recovery(
    rng: random.Random, cycle_id: int, sleep_id: str, uid: str, wu: int, wake: datetime
) -> tuple[Any, ...]:
    written = wake + timedelta(minutes=20)
    score, rhr = 1 + _below(rng, 100 - 1), round(45 + rng.random() * 20, 1)
    hrv, spo2 = round(25 + rng.random() * 90, 3), round(94 + rng.random() * 5, 2)
    skin = round(32 + rng.random() * 3, 2)
    raw = (
        f'{{"cycle_id":{cycle_id},"sleep_id":"{sleep_id}","user_id":{wu},'
        f'"created_at":"{_z(written)}","updated_at":"{_z(written)}",'
        f'"score_state":"SCORED","score":{{"user_calibrating":false,'
        f'"recovery_score":{score},"resting_heart_rate":{rhr},'
        f'"hrv_rmssd_milli":{hrv},"spo2_percentage":{spo2},"skin_temp_celsius":{skin}}}}}'
    )
    common = (uid, wu, "SCORED", written, written, raw, written)
    return (cycle_id, sleep_id, *common, False, float(score), rhr, hrv, spo2, skin)


def _sleep(
    rng: random.Random,
    sleep_id: str,
    cycle_id: int,
    uid: str,
    wu: int,
    tz: str,
    start: datetime,
    wake: datetime | None,
    *,
    nap: bool = False,
) -> tuple[Any, ...]:
    end = wake or start + timedelta(minutes=20 + _below(rng, 60))
    bed = int((end - start).total_seconds() * 1000)
    light, deep, rem = int(bed * 0.5), int(bed * 0.2), int(bed * 0.22)
    perf, eff, cons = (
        50 + _below(rng, 100 - 50),
        75 + _below(rng, 99 - 75),
        40 + _below(rng, 95 - 40),
    )
    resp = round(13 + rng.random() * 4, 2)
    written = end + timedelta(minutes=15)
    raw = (
        f'{{"id":"{sleep_id}","cycle_id":{cycle_id},"user_id":{wu},'
        f'"created_at":"{_z(written)}","updated_at":"{_z(written)}",'
        f'"start":"{_z(start)}","end":"{_z(end)}","timezone_offset":"{tz}",'
        f'"nap":{"true" if nap else "false"},"score_state":"SCORED","score":{{'
        f'"stage_summary":{{"total_in_bed_time_milli":{bed},'
        f'"total_awake_time_milli":{bed - light - deep - rem},'
        f'"total_no_data_time_milli":0,"total_light_sleep_time_milli":{light},'
        f'"total_slow_wave_sleep_time_milli":{deep},'
        f'"total_rem_sleep_time_milli":{rem},"sleep_cycle_count":{bed // 5_400_000},'
        f'"disturbance_count":{_below(rng, 20)}}},"respiratory_rate":{resp},'
        f'"sleep_performance_percentage":{perf},'
        f'"sleep_consistency_percentage":{cons},"sleep_efficiency_percentage":{eff}}}}}'
    )
    common = (uid, wu, "SCORED", written, written, raw, written)
    scores = (float(perf), float(eff), float(cons), resp)
    return (
        sleep_id,
        cycle_id,
        *common,
        start,
        end,
        tz,
        nap,
        *scores,
        bed,
        light,
        deep,
        rem,
    )


def _workout(
    rng: random.Random, workout_id: str, uid: str, wu: int, tz: str, start: datetime
) -> tuple[Any, ...]:
    end = start + timedelta(minutes=25 + _below(rng, 70))
    written = end + timedelta(minutes=5)
    sport = SPORTS[rng.randrange(len(SPORTS))]
    strain, kj = round(5 + rng.random() * 12, 4), round(600 + rng.random() * 2400, 1)
    avg_hr, max_hr = 110 + _below(rng, 50), 150 + _below(rng, 45)
    distance = round(2000 + rng.random() * 15000, 1) if sport in SPORTS[:2] else None
    dist_json = f',"distance_meter":{distance}' if distance is not None else ""
    raw = (
        f'{{"id":"{workout_id}","user_id":{wu},"created_at":"{_z(written)}",'
        f'"updated_at":"{_z(written)}","start":"{_z(start)}","end":"{_z(end)}",'
        f'"timezone_offset":"{tz}","sport_name":"{sport}","score_state":"SCORED",'
        f'"score":{{"strain":{strain},"average_heart_rate":{avg_hr},'
        f'"max_heart_rate":{max_hr},"kilojoule":{kj},"percent_recorded":100.0'
        f"{dist_json}}}}}"
    )
    common = (uid, wu, "SCORED", written, written, raw, written)
    scores = (strain, kj, avg_hr, max_hr, distance)
    return (workout_id, *common, start, end, tz, sport, *scores)
