"""`make run`: the whole system on one machine with nothing configured.

Starts a sandbox emulator for each upstream whose credentials are not set (WHOOP, Sahha), then
the WHOOP service and the gateway with the contract's uvicorn commands, waits until every process
answers `/health/ready`, and prints the URLs, a demo user id and a bearer token for it. Ctrl-C
stops it all.
Ports: `STACK_GATEWAY_PORT` (8000), `STACK_WHOOP_SERVICE_PORT` (8001), `STACK_WHOOP_SANDBOX_PORT`
(9001), `STACK_SAHHA_SANDBOX_PORT` (9002).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import jwt
from dotenv import dotenv_values

from shared.devsecrets import load_dev_secrets
from shared.time import utc_now

DEMO_USER_ID = str(
    uuid.uuid5(uuid.NAMESPACE_URL, "https://health-backend.local/demo-user")
)
READY_TIMEOUT_S = 60.0
TOKEN_TTL = timedelta(days=7)


@dataclass
class Process:
    name: str
    port: int
    factory: str
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "uvicorn", "--factory", self.factory]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--no-access-log"]
        self.popen = subprocess.Popen(cmd, env=self.env)


def _config() -> dict[str, str]:
    """The environment as the services will see it: `.env` first, the real environment over it."""
    from_file = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    return {**from_file, **os.environ}


def _port(env: dict[str, str], name: str, default: int) -> int:
    return int(env.get(name, default))


def plan(env: dict[str, str]) -> list[Process]:
    """The processes to start, emulators first, with each one's environment."""
    ports = {
        "gateway": _port(env, "STACK_GATEWAY_PORT", 8000),
        "whoop_service": _port(env, "STACK_WHOOP_SERVICE_PORT", 8001),
        "whoop_sandbox": _port(env, "STACK_WHOOP_SANDBOX_PORT", 9001),
        "sahha_sandbox": _port(env, "STACK_SAHHA_SANDBOX_PORT", 9002),
    }
    gateway_url = f"http://127.0.0.1:{ports['gateway']}"
    base = {**env, "PYTHONUNBUFFERED": "1"}
    service_env = {
        **base,
        "WHOOP_SERVICE_URL": f"http://127.0.0.1:{ports['whoop_service']}",
        "WHOOP_REDIRECT_URI": env.get(
            "WHOOP_REDIRECT_URI", f"{gateway_url}/api/v1/whoop/callback"
        ),
    }
    processes: list[Process] = []
    if not (env.get("WHOOP_CLIENT_ID") and env.get("WHOOP_CLIENT_SECRET")):
        whoop = f"http://127.0.0.1:{ports['whoop_sandbox']}"
        sandbox_env = {
            **base,
            "SANDBOX_WHOOP_CLIENT_ID": "sandbox-client-id",
            "SANDBOX_WHOOP_CLIENT_SECRET": "sandbox-client-secret",
            "SANDBOX_WHOOP_WEBHOOK_URL": f"{gateway_url}/webhooks/whoop",
        }
        processes.append(
            Process(
                "WHOOP sandbox",
                ports["whoop_sandbox"],
                "sandbox.whoop:create_app",
                sandbox_env,
            )
        )
        service_env |= {
            "WHOOP_CLIENT_ID": "sandbox-client-id",
            "WHOOP_CLIENT_SECRET": "sandbox-client-secret",
            "WHOOP_API_BASE_URL": f"{whoop}/developer",
            "WHOOP_OAUTH_BASE_URL": f"{whoop}/oauth/oauth2",
        }
    if not (env.get("SAHHA_CLIENT_ID") and env.get("SAHHA_CLIENT_SECRET")):
        sahha_env = {
            **base,
            "SANDBOX_SAHHA_CLIENT_ID": "sandbox-sahha-client",
            "SANDBOX_SAHHA_CLIENT_SECRET": "sandbox-sahha-secret",
        }
        processes.append(
            Process(
                "Sahha sandbox",
                ports["sahha_sandbox"],
                "sandbox.sahha:create_app",
                sahha_env,
            )
        )
        service_env |= {
            "SAHHA_API_BASE_URL": f"http://127.0.0.1:{ports['sahha_sandbox']}",
            "SAHHA_CLIENT_ID": "sandbox-sahha-client",
            "SAHHA_CLIENT_SECRET": "sandbox-sahha-secret",
        }
    processes.append(
        Process(
            "WHOOP service",
            ports["whoop_service"],
            "whoop_service.main:create_app",
            service_env,
        )
    )
    processes.append(
        Process("gateway", ports["gateway"], "gateway.main:create_app", service_env)
    )
    return processes


def wait_ready(process: Process, deadline: float) -> None:
    """Poll `/health/ready` (or `/docs` for emulators) until it answers 200."""
    path = "/health/ready" if not process.name.endswith("sandbox") else "/docs"
    while time.monotonic() < deadline:
        if process.popen is not None and process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited with code {process.popen.returncode}"
            )
        try:
            with urllib.request.urlopen(process.url + path, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} was not ready within {READY_TIMEOUT_S:.0f} s")


def demo_token(env: dict[str, str], var_dir: Path) -> str:
    """A Supabase-shaped access token for the demo user, signed with the gateway's HS256 secret."""
    secret = (
        env.get("SUPABASE_JWT_SECRET") or load_dev_secrets(var_dir).supabase_jwt_secret
    )
    now = utc_now()
    claims = {
        "sub": DEMO_USER_ID,
        "aud": env.get("JWT_AUDIENCE", "authenticated"),
        "role": "authenticated",
        # The gateway checks `iss` only when SUPABASE_JWT_ISSUER is set; then the demo token has it.
        "iss": env.get("SUPABASE_JWT_ISSUER", "").strip() or "http://127.0.0.1/auth/v1",
        "iat": int(now.timestamp()),
        "exp": int((now + TOKEN_TTL).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def stop(processes: list[Process]) -> None:
    """SIGTERM every process, then SIGKILL whatever has not exited after 10 s."""
    running = [
        p.popen for p in processes if p.popen is not None and p.popen.poll() is None
    ]
    for popen in running:
        popen.terminate()
    for popen in running:
        try:
            popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            popen.kill()


def banner(processes: list[Process], token: str) -> str:
    gateway = next(p for p in processes if p.name == "gateway")
    lines = ["", "Stack ready:"]
    lines += [f"  {p.name:<14} {p.url}" for p in processes]
    lines += [
        f"  API docs       {gateway.url}/docs",
        "",
        f"Demo user id:  {DEMO_USER_ID}  (WHOOP not connected yet)",
        f"Bearer token:  {token}",
        "",
        "Try:",
        f"  curl -s -H 'Authorization: Bearer {token}' \\",
        f"    {gateway.url}/api/v1/health/{DEMO_USER_ID}",
        "",
        "Connect WHOOP (three steps, as the app does them):",
        "  1. get an authorization URL:",
        f"     curl -s -X POST -H 'Authorization: Bearer {token}' \\",
        f"       {gateway.url}/api/v1/whoop/connect/{DEMO_USER_ID}",
        "  2. open its authorization_url in a browser: WHOOP approves and the page shows a",
        "     completion code (an app gets it in the redirect to APP_REDIRECT_URL instead);",
        "  3. finish the link as the same user, within 10 minutes:",
        f"     curl -s -X POST -H 'Authorization: Bearer {token}' \\",
        "       -H 'Content-Type: application/json' -d '{\"completion\": \"<code>\"}' \\",
        f"       {gateway.url}/api/v1/whoop/connect/{DEMO_USER_ID}/complete",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def main() -> int:
    env = _config()
    env.setdefault("ENVIRONMENT", "development")
    var_dir = Path(env.get("VAR_DIR", "./var"))
    load_dev_secrets(var_dir)  # create once, before two services race for it
    processes = plan(env)
    stopping = False

    def on_signal(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        for process in processes:
            process.start()
            wait_ready(process, deadline)
        print(banner(processes, demo_token(env, var_dir)), flush=True)
        while not stopping:
            for process in processes:
                assert process.popen is not None
                if process.popen.poll() is not None:
                    print(
                        f"{process.name} stopped (exit {process.popen.returncode})",
                        flush=True,
                    )
                    return 1
            time.sleep(0.5)
        return 0
    except RuntimeError as exc:
        print(f"make run failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
