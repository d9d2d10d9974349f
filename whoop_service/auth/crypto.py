"""Tokens encrypted at rest with MultiFernet: the first key encrypts, every key decrypts.

The plaintext carries the user id and the purpose (`access`, `refresh`, `pkce`) next to the secret,
and decryption checks both, so a ciphertext copied into another user's row or another column is
refused instead of handing out someone else's WHOOP token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.settings import ConfigurationError


class TokenDecryptError(Exception):
    """A stored ciphertext cannot be decrypted for this user and purpose."""


class TokenCipher:
    """Encrypts and decrypts per-user secrets."""

    def __init__(self, keys: Sequence[str]) -> None:
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError):
                # Never echo the key: say which one is wrong.
                raise ConfigurationError(
                    f"TOKEN_ENCRYPTION_KEYS entry {position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from None
        if not fernets:
            raise ConfigurationError("TOKEN_ENCRYPTION_KEYS is empty")
        self._fernet = MultiFernet(fernets)

    def encrypt(self, user_id: str, purpose: str, secret: str) -> str:
        plaintext = json.dumps(
            {"u": user_id, "p": purpose, "s": secret}, separators=(",", ":")
        )
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, user_id: str, purpose: str, ciphertext: str) -> str:
        try:
            data = json.loads(self._fernet.decrypt(ciphertext.encode()))
        except (InvalidToken, ValueError) as exc:
            raise TokenDecryptError(
                "stored secret cannot be decrypted with the current keys"
            ) from exc
        if data.get("u") != user_id or data.get("p") != purpose:
            raise TokenDecryptError("stored secret belongs to another user or purpose")
        secret = data.get("s")
        if not isinstance(secret, str):
            raise TokenDecryptError("stored secret is malformed")
        return secret

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the first key (after a key rotation)."""
        return self._fernet.rotate(ciphertext.encode()).decode()
