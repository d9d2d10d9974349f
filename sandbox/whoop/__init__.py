"""A local emulator of the WHOOP Developer API v2: OAuth, data, rate limits, signed webhooks.

`create_app()` builds the ASGI app; `app.state.sandbox` (a `WhoopSandbox`) is what tests drive.
"""

from sandbox.whoop.app import create_app
from sandbox.whoop.settings import WhoopSandboxSettings
from sandbox.whoop.state import WhoopSandbox
from sandbox.whoop.webhooks import sign as sign_webhook

__all__ = ["WhoopSandbox", "WhoopSandboxSettings", "create_app", "sign_webhook"]
