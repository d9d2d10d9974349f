"""docker-compose.yml runs with ENVIRONMENT=production: it never falls back to a known secret."""

import re
from collections.abc import Iterator
from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
# Compose interpolation: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY|KEYS|TOKEN", re.IGNORECASE)


def strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_secrets_in_compose_have_no_default_and_are_required():
    uses = [m for s in strings(compose()) for m in INTERPOLATION.finditer(s)]
    secret_uses = [m for m in uses if SECRET_NAME.search(m["name"])]
    assert any(m["name"] == "POSTGRES_PASSWORD" for m in secret_uses)
    for use in secret_uses:
        assert use["op"] == ":?", f"{use[0]} must be required (${{NAME:?message}})"
        assert use["arg"].strip(), f"{use[0]} must say what to set"


def test_no_secret_is_written_into_compose():
    """A secret-named variable in a service's environment comes from the operator."""
    for name, service in compose()["services"].items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                assert INTERPOLATION.fullmatch(str(value)), (
                    f"{name}: {key} is a literal"
                )
        for key, value in environment.items():
            # A URL may carry a password (DATABASE_URL): only as a required interpolation.
            userinfo = re.search(r"://[^:/@]*:(\$\{[^}]*\}|[^@/]*)@", str(value))
            if userinfo:
                assert INTERPOLATION.fullmatch(userinfo[1]), (
                    f"{name}: {key} has a password"
                )
