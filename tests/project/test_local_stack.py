"""`make run`'s launcher brings up both services and the emulators on a machine with nothing set."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest

from tests.servers import free_port

STACK_ENV_DROP = (
    "WHOOP_CLIENT_ID",
    "WHOOP_CLIENT_SECRET",
    "SAHHA_CLIENT_ID",
    "SAHHA_CLIENT_SECRET",
    "DATABASE_URL",
    "ENVIRONMENT",
)


def read_until(proc: subprocess.Popen[str], marker: str, timeout_s: float) -> str:
    seen = []
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line)
            if marker in line:
                # The rest of the banner follows at once.
                time.sleep(0.2)
                seen.extend(proc.stdout.readlines())
                return "".join(seen)
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    pytest.fail(f"no {marker!r} within {timeout_s} s; output so far:\n{''.join(seen)}")


def get_json(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, json.loads(resp.read())


def call(method: str, url: str, token: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def connect_as_printed(gateway: str, user_id: str, token: str) -> None:
    """The banner's three connect steps: URL, the browser at the emulator (which comes back to
    the callback's page with the completion code), the completion by the same user."""
    started = call("POST", f"{gateway}/api/v1/whoop/connect/{user_id}", token)
    with urllib.request.urlopen(started["authorization_url"], timeout=10) as page:
        html = page.read().decode()
    found = re.search(r"<code>([A-Za-z0-9_-]+)</code>", html)
    assert found is not None, html
    linked = call(
        "POST",
        f"{gateway}/api/v1/whoop/connect/{user_id}/complete",
        token,
        {"completion": found.group(1)},
    )
    assert linked["status"] == "connected"
    status = call("GET", f"{gateway}/api/v1/whoop/status/{user_id}", token)
    assert status["status"] == "connected"


@pytest.mark.slow
def test_make_run_launcher_answers_ready_and_prints_a_working_token(tmp_path: Path):
    ports = {
        name: free_port() for name in ("GATEWAY", "WHOOP_SERVICE", "WHOOP_SANDBOX")
    }
    ports["SAHHA_SANDBOX"] = free_port()
    env = {k: v for k, v in os.environ.items() if k not in STACK_ENV_DROP}
    env |= {f"STACK_{name}_PORT": str(port) for name, port in ports.items()}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.stack"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = read_until(proc, "Stack ready", timeout_s=60)
        assert time.monotonic() - started < 60
        for name in ("GATEWAY", "WHOOP_SERVICE"):
            status, body = get_json(f"http://127.0.0.1:{ports[name]}/health/ready")
            assert status == 200
            assert body["status"] == "ready"
        user_line = next(
            line for line in banner.splitlines() if "Demo user id:" in line
        )
        user_id = user_line.split()[3]
        token = next(
            line for line in banner.splitlines() if "Bearer token:" in line
        ).split()[-1]
        secret = json.loads((tmp_path / "var" / "dev-secrets.json").read_text())
        claims = jwt.decode(
            token,
            secret["supabase_jwt_secret"],
            algorithms=["HS256"],
            audience="authenticated",
        )
        assert claims["sub"] == user_id
        assert f"/api/v1/health/{user_id}" in banner
        assert f"/api/v1/whoop/connect/{user_id}/complete" in banner
        connect_as_printed(f"http://127.0.0.1:{ports['GATEWAY']}", user_id, token)
        assert (tmp_path / "var" / "whoop.db").exists(), (
            "the WHOOP service runs on SQLite"
        )
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0
    for port in ports.values():
        with pytest.raises(urllib.error.URLError, match="refused"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
