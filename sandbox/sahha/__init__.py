"""A local ASGI emulator of the Sahha REST API: `uvicorn --factory sandbox.sahha:create_app`."""

from sandbox.sahha.api import create_app
from sandbox.sahha.settings import SahhaSandboxSettings
from sandbox.sahha.state import LoggedRequest, SahhaSandbox

__all__ = ["LoggedRequest", "SahhaSandbox", "SahhaSandboxSettings", "create_app"]
