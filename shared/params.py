"""Request parameters both services validate the same way (CONTRACT.md §3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from shared.contracts import USER_ID_PATTERN

UserIdPath = Annotated[
    str,
    Path(
        pattern=USER_ID_PATTERN,
        description="The app's user id (Supabase `sub`): 1 to 64 letters, digits, `-` or `_`.",
        examples=["8f0c2a5e-7b1d-4c3e-9a6f-2d4b8e1c0f3a"],
    ),
]
