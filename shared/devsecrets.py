"""Secrets for development, generated once and kept in `./var/dev-secrets.json`.

Both services read the same file, so the gateway's `WHOOP_SERVICE_API_KEY` equals the WHOOP
service's generated `INTERNAL_API_KEYS`, and the demo bearer token printed by `make run` verifies
with the gateway's generated `SUPABASE_JWT_SECRET`. Never used when `ENVIRONMENT=production`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

FILE_NAME = "dev-secrets.json"


@dataclass(frozen=True, slots=True)
class DevSecrets:
    internal_api_key: str
    token_encryption_key: str
    supabase_jwt_secret: str


def load_dev_secrets(var_dir: Path) -> DevSecrets:
    """Read the development secrets, creating them on first use (safe when two processes race)."""
    path = var_dir / FILE_NAME
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fresh = {
            "internal_api_key": secrets.token_urlsafe(32),
            "token_encryption_key": Fernet.generate_key().decode(),
            "supabase_jwt_secret": secrets.token_urlsafe(48),
        }
        tmp = var_dir / f".{FILE_NAME}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(fresh, fh)
        # link() fails if another process won the race; then its file is the one to use.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    data = json.loads(path.read_text())
    return DevSecrets(
        internal_api_key=data["internal_api_key"],
        token_encryption_key=data["token_encryption_key"],
        supabase_jwt_secret=data["supabase_jwt_secret"],
    )
