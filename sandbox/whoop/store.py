"""Which records exist at a given time, plus what tests changed (rescores, deletions).

Records are not stored: `entries` lists what exists (cheap: times and ids), `materialize` builds
the JSON of one entry, then overlays test changes on top.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandbox.whoop import data
from sandbox.whoop.data import Delays, Record
from sandbox.whoop.plan import Activity, Night, WhoopUser, night_of, nights_started
from sandbox.whoop.wire import Kind, format_ts, to_ms


@dataclass(frozen=True)
class Entry:
    """One record that exists: its kind, id (as text), sort time and what it derives from."""

    kind: Kind
    key: str
    start: datetime
    user: WhoopUser
    night: Night | None
    activity: Activity | None = None
    nap: bool = False


@dataclass
class Rescore:
    """A test's replacement score and the `updated_at` it brought."""

    score: Record
    updated_at: datetime


def _merge(base: Record, changes: dict[str, Any]) -> Record:
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class RecordStore:
    """Lists, builds and alters records of every user."""

    def __init__(self, seed: int, delays: Delays) -> None:
        self.seed = seed
        self.delays = delays
        self.deleted: set[tuple[Kind, str]] = set()
        self.rescored: dict[tuple[Kind, str], Rescore] = {}

    def entries(self, user: WhoopUser, kind: Kind, now: datetime) -> list[Entry]:
        """Records of `kind` that exist at `now`, newest first (ties by id)."""
        found = [
            e for e in self._all(user, kind, now) if (kind, e.key) not in self.deleted
        ]
        found.sort(key=lambda e: (e.start, e.key), reverse=True)
        return found

    def _all(self, user: WhoopUser, kind: Kind, now: datetime) -> Iterator[Entry]:
        for night in nights_started(user, now, self.seed):
            if night.sleep.created_at > now:
                continue
            if kind in ("cycle", "recovery"):
                yield Entry(kind, str(night.cycle_id), night.sleep.start, user, night)
            elif kind == "sleep":
                yield Entry(
                    kind, night.sleep.id, night.sleep.start, user, night, night.sleep
                )
                for nap in night.naps:
                    if nap.created_at <= now:
                        yield Entry(kind, nap.id, nap.start, user, night, nap, nap=True)
            else:
                for workout in night.workouts:
                    if workout.created_at <= now:
                        yield Entry(
                            kind, workout.id, workout.start, user, night, workout
                        )
        if kind == "workout":
            for workout in user.extra_workouts:
                if workout.created_at <= now:
                    yield Entry(kind, workout.id, workout.start, user, None, workout)

    def materialize(self, entry: Entry, now: datetime) -> Record | None:
        """The entry's JSON at `now`, with test changes applied; None if it has no such record."""
        record = self._build(entry, now)
        overlay = self.rescored.get((entry.kind, entry.key))
        if record is not None and overlay is not None:
            record["score_state"] = "SCORED"
            record["score"] = copy.deepcopy(overlay.score)
            natural = datetime.fromisoformat(record["updated_at"])
            record["updated_at"] = format_ts(max(natural, overlay.updated_at))
        return record

    def _build(self, entry: Entry, now: datetime) -> Record | None:
        user, night, activity = entry.user, entry.night, entry.activity
        if entry.kind == "workout" and activity is not None:
            return data.workout_record(user, activity, delays=self.delays, now=now)
        assert night is not None
        if entry.kind == "sleep" and activity is not None:
            return data.sleep_record(
                user, activity, night, nap=entry.nap, delays=self.delays, now=now
            )
        if entry.kind == "recovery":
            sleep_gone = ("sleep", night.sleep.id) in self.deleted
            if sleep_gone:
                return None
            return data.recovery_record(
                user, night, delays=self.delays, now=now, seed=self.seed
            )
        following = night_of(user, night.night + timedelta(days=1), self.seed)
        ended = following.sleep.created_at <= now
        return data.cycle_record(user, night, following, ended=ended, now=now)

    def records(self, user: WhoopUser, kind: Kind, now: datetime) -> list[Record]:
        """Every record of `kind` the user has at `now`, newest first."""
        built = (
            self.materialize(entry, now) for entry in self.entries(user, kind, now)
        )
        return [record for record in built if record is not None]

    def find(
        self, user: WhoopUser, kind: Kind, key: str, now: datetime
    ) -> tuple[Entry, Record] | None:
        """The user's record of `kind` with id `key`, or None."""
        for entry in self.entries(user, kind, now):
            if entry.key == key:
                record = self.materialize(entry, now)
                return None if record is None else (entry, record)
        return None

    def rescore(
        self, entry: Entry, record: Record, changes: dict[str, Any], now: datetime
    ) -> None:
        """Score the record (merging `changes` into its score) with a newer `updated_at`."""
        base = record.get("score") or self._fresh_score(entry)
        previous = datetime.fromisoformat(record["updated_at"])
        updated = max(to_ms(now), previous + timedelta(milliseconds=1))
        self.rescored[(entry.kind, entry.key)] = Rescore(_merge(base, changes), updated)

    def _fresh_score(self, entry: Entry) -> Record:
        activity, night = entry.activity, entry.night
        if entry.kind == "workout" and activity is not None:
            return data.workout_score(
                activity, activity.sport[0] if activity.sport else ""
            )
        assert night is not None
        if entry.kind == "sleep" and activity is not None:
            return data.sleep_score(
                activity, nap=entry.nap, calibrating=night.calibrating
            )
        return data.recovery_score(entry.user, night, self.seed)

    def delete(self, entry: Entry) -> list[tuple[Kind, str]]:
        """Delete the record; a main sleep or cycle takes its recovery with it."""
        gone: list[tuple[Kind, str]] = [(entry.kind, entry.key)]
        night = entry.night
        if night is not None and (
            entry.kind == "cycle" or (entry.kind == "sleep" and not entry.nap)
        ):
            gone.append(("recovery", str(night.cycle_id)))
        self.deleted.update(gone)
        return gone
