"""How Sahha writes ids and timestamps on the wire."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

JsonObject = dict[str, Any]

# Real ids are version-5 UUIDs (sahha-api.md §3.1); a fixed namespace keeps ours stable across runs.
_NAMESPACE: Final = uuid.UUID("6f5d3c8e-2b1a-4c47-9a51-5a8a7e3c1d20")


def stable_uuid(*parts: object) -> str:
    """A name-based (v5) UUID from `parts`: the same parts always give the same id."""
    return str(uuid.uuid5(_NAMESPACE, "|".join(str(part) for part in parts)))


def local_iso(value: datetime) -> str:
    """Local time with its offset and whole seconds, e.g. `2025-07-12T00:00:00+12:00`."""
    return value.isoformat(timespec="seconds")


def local_iso_minutes(value: datetime) -> str:
    """Local time to the minute, as captured datetime biomarker values: `2025-07-11T06:00+12:00`."""
    return value.isoformat(timespec="minutes")


def utc_z(value: datetime) -> str:
    """UTC with whole seconds and a `Z`, e.g. `2025-07-12T03:01:33Z`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
