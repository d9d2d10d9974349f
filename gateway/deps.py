"""`Annotated` dependency aliases: the lifespan builds the objects, routes receive them.

Every provider is `async def`: FastAPI runs plain `def` dependencies in a thread pool, a thread
hop per dependency per request for what is an attribute read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.sahha.client import SahhaClient
from gateway.settings import GatewaySettings
from gateway.whoop_service_client import WhoopServiceClient


async def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def get_sahha(request: Request) -> SahhaClient:
    client: SahhaClient = request.app.state.sahha
    return client


async def get_whoop_service(request: Request) -> WhoopServiceClient:
    client: WhoopServiceClient = request.app.state.whoop_service
    return client


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
SahhaDep = Annotated[SahhaClient, Depends(get_sahha)]
WhoopServiceDep = Annotated[WhoopServiceClient, Depends(get_whoop_service)]
