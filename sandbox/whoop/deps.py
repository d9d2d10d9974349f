"""Dependencies shared by the emulator's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sandbox.whoop.state import WhoopSandbox


def get_sandbox(request: Request) -> WhoopSandbox:
    """The emulator state of the app serving this request."""
    sandbox: WhoopSandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[WhoopSandbox, Depends(get_sandbox)]
