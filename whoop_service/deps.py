"""`Annotated` dependency aliases: the lifespan builds the objects, routes receive them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from whoop_service.auth.flow import ConnectFlow


def get_connect_flow(request: Request) -> ConnectFlow:
    flow: ConnectFlow = request.app.state.connect_flow
    return flow


ConnectFlowDep = Annotated[ConnectFlow, Depends(get_connect_flow)]
