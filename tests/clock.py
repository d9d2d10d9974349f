"""Clocks tests move by hand."""

import asyncio
import heapq
from datetime import UTC, datetime, timedelta


class MutableClock:
    """Callable like `utc_now`; `advance()` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class VirtualTime:
    """Time that passes only when every task is asleep: `sleep()` parks a task, `run()` drives.

    For code that waits on the clock but does no real I/O while doing so.
    """

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, object]] = []
        self._seq = 0

    def clock(self) -> float:
        return self.now

    def hooks(self) -> dict[str, object]:
        """`clock`, `sleep` and `monotonic` keywords for a budget living on this time."""
        return {"clock": self.clock, "sleep": self.sleep, "monotonic": self.clock}

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), self._seq, fut))
        await fut

    async def run(self, *coros):
        """Run `coros` to completion, advancing time whenever all of them are asleep."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(20):
                await asyncio.sleep(0)
            if self._sleepers and not all(t.done() for t in tasks):
                wake, _, fut = heapq.heappop(self._sleepers)
                self.now = max(self.now, wake)
                fut.set_result(None)  # type: ignore[attr-defined]
        return [t.result() for t in tasks]
