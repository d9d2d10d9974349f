"""`python -m whoop_service migrate`: apply pending migrations to DATABASE_URL, then exit 0."""

from __future__ import annotations

import argparse
import sys

import structlog

from shared.logging import configure_logging
from whoop_service.db.migrate import upgrade_to_head
from whoop_service.settings import WhoopSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m whoop_service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "migrate", help="apply pending migrations to DATABASE_URL, then exit"
    )
    args = parser.parse_args(argv)
    # Only DATABASE_URL matters here: a migration job need not be given the service's secrets.
    settings = WhoopSettings()
    configure_logging(settings.log_level, json=settings.log_json)
    log = structlog.get_logger()
    if args.command == "migrate":
        log.info("db.migrate.start", backend=settings.database_url.split(":", 1)[0])
        try:
            upgrade_to_head(settings.database_url)
        except Exception as exc:
            log.error("db.migrate.failed", error_type=type(exc).__name__, exc_info=exc)
            return 1
        log.info("db.migrate.done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
