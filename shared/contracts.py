"""Models of the internal WHOOP-service API that the gateway consumes, and shared path types."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

USER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

UserIdPath = Annotated[
    str,
    Path(
        pattern=USER_ID_PATTERN,
        description="The app's user id (Supabase `sub`): 1 to 64 letters, digits, `-` or `_`.",
        examples=["8f0c2a5e-7b1d-4c3e-9a6f-2d4b8e1c0f3a"],
    ),
]

ConnectionState = Literal["connected", "not_connected", "needs_reauth"]


class ContractModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ConnectResponse(ContractModel):
    """Where to send the member's browser to approve WHOOP access."""

    authorization_url: str
    state: str
    expires_at: datetime


class CallbackRequest(ContractModel):
    """What WHOOP's redirect carried back: a `code`, or an `error` (e.g. `access_denied`)."""

    code: str | None = Field(default=None, min_length=1, max_length=2048)
    error: str | None = Field(default=None, pattern=r"^[a-z_]{1,64}$")
    state: str = Field(min_length=8, max_length=512)
    user_id: str | None = Field(
        default=None,
        pattern=USER_ID_PATTERN,
        description="When given, the state must have been issued to this user.",
    )

    @model_validator(mode="after")
    def _code_or_error(self) -> CallbackRequest:
        if (self.code is None) == (self.error is None):
            raise ValueError("exactly one of code and error is required")
        return self


class CallbackResponse(ContractModel):
    """The connection made by a completed authorization."""

    user_id: str
    status: ConnectionState
    whoop_user_id: int
    scopes: list[str]


class TypeSyncStatus(ContractModel):
    """Where the sync of one data type stands for a user."""

    last_sync_at: datetime | None
    status: Literal["success", "partial", "failed"] | None
    records_synced: int
    error: str | None
    needs_sync: bool


class ConnectionStatusResponse(ContractModel):
    """A user's WHOOP connection and per-type sync status."""

    user_id: str
    status: ConnectionState
    whoop_user_id: int | None
    scopes: list[str]
    connected_at: datetime | None
    reauth_reason: str | None
    sync: dict[str, TypeSyncStatus]


class DisconnectResponse(ContractModel):
    """What disconnecting did."""

    user_id: str
    status: ConnectionState
    was_connected: bool
    revoked_at_whoop: bool
    data_deleted: bool
    records_deleted: dict[str, int]
