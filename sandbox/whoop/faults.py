"""Injected failures and the request log, the emulator's two test-only request concerns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class Fault:
    """Fail (or slow down) the next `remaining` requests under `prefix`."""

    prefix: str
    status: int
    remaining: int
    delay_s: float
    on_page: int | None
    after_handler: bool

    def matches(self, path: str, page: int) -> bool:
        """Whether this fault applies to a request for `path`, asking for page `page`."""
        if not path.startswith(self.prefix):
            return False
        return self.on_page is None or self.on_page == page


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    at: datetime


class FaultQueue:
    """Pending faults, first added first used."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue a fault."""
        if fault.remaining < 1:
            raise ValueError("count must be at least 1")
        self._faults.append(fault)

    def take(self, path: str, page: int) -> Fault | None:
        """The first fault matching this request, used up by one."""
        for fault in self._faults:
            if fault.matches(path, page):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    @property
    def pending(self) -> list[Fault]:
        """Faults not used up yet."""
        return list(self._faults)
