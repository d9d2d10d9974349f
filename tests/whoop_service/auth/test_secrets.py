"""No WHOOP token in plaintext: not in the database's bytes, not in logs, not in any answer."""

import asyncio
import logging
from pathlib import Path

from sqlalchemy import text

from whoop_service.db import tables as t


def issued_secrets(harness) -> list[str]:
    return [g.token for g in harness.whoop.tokens.grants.values()]


async def stored_text(harness) -> bytes:
    if harness.database_url.startswith("sqlite"):
        db = Path(harness.database_url.split("///", 1)[1])
        await harness.app.state.engine.dispose()  # flush the WAL into view
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    chunks = []
    async with harness.app.state.engine.connect() as conn:
        for table in t.metadata.tables:
            rows = await conn.execute(text(f"SELECT x::text FROM whoop.{table} x"))
            chunks.extend(r[0].encode() for r in rows)
    return b"\n".join(chunks)


async def test_tokens_never_appear_in_plaintext(harness, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    answers = []
    resp = await harness.connect("user-1")
    answers.append(resp.text)
    whoop_user = resp.json()["whoop_user_id"]
    harness.clock.advance(hours=2)
    harness.whoop.expire_access_tokens(whoop_user)
    await asyncio.gather(
        *(harness.app.state.tokens.get_access_token("user-1") for _ in range(5))
    )
    answers.append((await harness.client.get("/internal/auth/status/user-1")).text)
    secrets = issued_secrets(harness)
    assert len(secrets) >= 4, "an access and a refresh token per grant, two grants"
    stored = await stored_text(harness)
    assert b"connections" in stored or b"user-1" in stored, (
        "the dump really holds the rows"
    )
    logs = capsys.readouterr().err + caplog.text
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret not in logs
        assert all(secret not in answer for answer in answers)
