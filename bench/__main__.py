"""`python -m bench`: run the benchmarks, print the table, write bench/RESULTS.md."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import backfill, budget_sim, gateway_overhead, read_path

RESULTS = Path(__file__).parent / "RESULTS.md"


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.split(
        "\n"
    )[1:2]
    return (
        f"{os.cpu_count()} cores ({cpu}), {' '.join(mem).split()[1] if mem else '?'} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


SECTIONS: dict[str, Callable[[], Awaitable[list[str]]]] = {
    "gateway": gateway_overhead.section,
    "reads": read_path.run,
    "budget": budget_sim.run,
    "backfill": backfill.run,
}


def main(argv: list[str]) -> int:
    """`python -m bench [gateway|reads|budget|backfill ...]`: all by default, in that order."""
    chosen = argv or list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        sys.stderr.write(
            f"unknown benchmark(s) {unknown}; choose from {list(SECTIONS)}\n"
        )
        return 2
    command = "make bench" if not argv else f"python -m bench {' '.join(argv)}"
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}` on {_machine()}.",
        "Loopback only; every figure below comes from the same run, side by side.",
        "",
    ]
    for name in chosen:
        sys.stderr.write(f"bench: {name}...\n")
        lines += asyncio.run(SECTIONS[name]())
    text = "\n".join(lines)
    RESULTS.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
