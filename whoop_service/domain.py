"""Plain domain records of the WHOOP service (no I/O, no framework types)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ConnectionStatus(StrEnum):
    CONNECTED = "connected"
    NEEDS_REAUTH = "needs_reauth"
    NOT_CONNECTED = "not_connected"


DATA_TYPES = ("cycle", "recovery", "sleep", "workout")
# The WHOOP scope each data type is read with; a type whose scope the member did not grant is
# `not_granted` and never requested. Recoveries page through `/v2/recovery` (read:recovery alone);
# a recovery fetched by id goes through its sleep, so that also needs read:sleep.
TYPE_SCOPES = {
    "cycle": "read:cycles",
    "recovery": "read:recovery",
    "sleep": "read:sleep",
    "workout": "read:workout",
}


def granted_types(scopes: Iterable[str]) -> tuple[str, ...]:
    """The data types the granted `scopes` allow reading, in DATA_TYPES order."""
    have = set(scopes)
    return tuple(k for k in DATA_TYPES if TYPE_SCOPES[k] in have)


@dataclass(frozen=True, slots=True)
class Connection:
    """A user's link to a WHOOP account; the tokens stay encrypted here."""

    user_id: str
    whoop_user_id: int
    status: ConnectionStatus
    scopes: tuple[str, ...]
    access_token_enc: str
    refresh_token_enc: str | None
    access_expires_at: datetime
    token_version: int
    reauth_reason: str | None
    connected_at: datetime
    refreshed_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OAuthState:
    """A pending authorization: who asked, and the PKCE verifier (encrypted)."""

    user_id: str
    code_verifier_enc: str
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class PendingGrant:
    """Tokens from an exchanged code, waiting for the user who started the flow (encrypted)."""

    completion_hash: str
    user_id: str
    whoop_user_id: int
    scopes: tuple[str, ...]
    access_token_enc: str
    refresh_token_enc: str | None
    access_expires_at: datetime
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SyncState:
    """Where the sync of one (user, data type) stands."""

    user_id: str
    data_type: str
    watermark: datetime | None
    last_sync_at: datetime | None
    last_success_at: datetime | None
    status: str
    records_synced: int
    error: str | None
    # WHOOP failures in a row (0 after a success); reads back off from a failing type by it.
    failures: int = 0
