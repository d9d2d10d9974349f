"""`Annotated` dependency aliases: the lifespan builds the objects, routes receive them.

Every provider is `async def`: FastAPI runs plain `def` dependencies in a thread pool, a thread
hop per dependency per request for what is an attribute read.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Header, Request

from whoop_service.auth.flow import ConnectFlow
from whoop_service.reads import DataReader
from whoop_service.sync.engine import SyncEngine
from whoop_service.whoop.user_limits import UserLimits

# Without a deadline from the caller, a request may spend this long on WHOOP.
DEFAULT_DEADLINE_S = 10.0
# Kept back from the caller's deadline for reading the database and answering.
ANSWER_MARGIN_S = 0.25


async def get_connect_flow(request: Request) -> ConnectFlow:
    flow: ConnectFlow = request.app.state.connect_flow
    return flow


async def get_reader(request: Request) -> DataReader:
    reader: DataReader = request.app.state.reader
    return reader


async def get_engine(request: Request) -> SyncEngine:
    engine: SyncEngine = request.app.state.sync_engine
    return engine


async def get_user_limits(request: Request) -> UserLimits:
    limits: UserLimits = request.app.state.user_limits
    return limits


async def request_deadline(
    x_request_deadline_ms: Annotated[
        int | None,
        Header(
            ge=0,
            le=600_000,
            description="Milliseconds the caller will wait for the answer.",
        ),
    ] = None,
) -> float:
    """The moment (on `time.monotonic()`) by which WHOOP calls must have finished."""
    budget = (
        DEFAULT_DEADLINE_S
        if x_request_deadline_ms is None
        else x_request_deadline_ms / 1000
    )
    return time.monotonic() + budget - ANSWER_MARGIN_S


ConnectFlowDep = Annotated[ConnectFlow, Depends(get_connect_flow)]
ReaderDep = Annotated[DataReader, Depends(get_reader)]
EngineDep = Annotated[SyncEngine, Depends(get_engine)]
DeadlineDep = Annotated[float, Depends(request_deadline)]
UserLimitsDep = Annotated[UserLimits, Depends(get_user_limits)]
