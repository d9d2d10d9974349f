"""WHOOP's records as received (v2). Unknown fields are ignored; missing and null are alike."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WhoopModel(BaseModel):
    """Base of every wire model: tolerant of WHOOP adding fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class WhoopProfile(WhoopModel):
    """`GET /v2/user/profile/basic`."""

    user_id: int
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
