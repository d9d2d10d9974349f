"""A clock tests move by hand."""

from datetime import UTC, datetime, timedelta


class MutableClock:
    """Callable like `utc_now`; `advance()` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
