"""Worker: claims due jobs and runs them, retrying with backoff until they go `dead`.

Every replica runs one. A claim is a lease (`locked_until`): a job whose worker died is claimed
again after it; a worker that lost its lease does not mark the job done.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.time import Clock, utc_now
from whoop_service.db.jobs import Job, JobRepository
from whoop_service.errors import WhoopNeedsReauth, WhoopNotConnected, error_code
from whoop_service.jobs.handlers import JobHandlers, RetryLater

log = structlog.get_logger()


class Worker:
    """Runs jobs from the table, `concurrency` at a time."""

    def __init__(
        self,
        sessions: async_sessionmaker[Any],
        handlers: JobHandlers,
        *,
        clock: Clock = utc_now,
        lease: timedelta = timedelta(minutes=5),
        poll_s: float = 1.0,
        backoff: timedelta = timedelta(seconds=30),
        concurrency: int = 4,
        record_retry_s: float = 0.5,
    ) -> None:
        self._sessions = sessions
        self._handlers = handlers
        self._clock = clock
        self._lease = lease
        self._poll_s = poll_s
        self._backoff = backoff
        self._record_retry_s = record_retry_s
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self.worker_id = f"{socket.gethostname()[:40]}:{uuid.uuid4().hex[:8]}"
        self.processed = 0

    def notify(self) -> None:
        """New work was queued: look now rather than at the next poll."""
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Claim and run jobs until `stop` is set; running jobs finish before it returns."""
        running: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            await self._slots.acquire()
            jobs = await self._claim_safely()
            if not jobs:
                self._slots.release()
                self._wake.clear()
                waiter = asyncio.create_task(self._wake.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self._poll_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()
                continue
            task = asyncio.create_task(self._run_and_release(jobs[0]))
            running.add(task)
            task.add_done_callback(running.discard)
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def run_once(self) -> int:
        """Run every job that is due now, one after the other (tests, admin tools)."""
        done = 0
        while jobs := await self._claim():
            await self._run(jobs[0])
            done += 1
        return done

    async def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Wait until no job is due or running (tests, graceful tooling)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            async with self._sessions() as session:
                pending = await JobRepository(session).pending_now(self._clock())
            if not pending:
                return
            if loop.time() > deadline:
                raise TimeoutError(f"{pending} jobs still pending")
            self.notify()
            await asyncio.sleep(0.05)

    async def _claim_safely(self) -> list[Job]:
        try:
            return await self._claim()
        except Exception as exc:  # the database blinked: try again at the next poll
            log.warning("jobs.claim_failed", error_type=type(exc).__name__)
            return []

    async def _claim(self) -> list[Job]:
        now = self._clock()
        async with self._sessions() as session:
            jobs = await JobRepository(session).claim(
                self.worker_id, now, now + self._lease
            )
            await session.commit()
        return jobs

    async def _run_and_release(self, job: Job) -> None:
        try:
            await self._run(job)
        finally:
            self._slots.release()

    async def _run(self, job: Job) -> None:
        try:
            outcome = await self._handlers.run(job)
        except (WhoopNotConnected, WhoopNeedsReauth) as exc:
            outcome = exc.instance_code
        except Exception as exc:
            await self._failed(job, exc)
            return
        kept = await self._record(
            job, lambda jobs: jobs.complete(job.id, self.worker_id, self._clock())
        )
        self.processed += 1
        log.info(
            "jobs.done", job_id=job.id, kind=job.kind, outcome=outcome, lease_kept=kept
        )

    async def _failed(self, job: Job, exc: Exception) -> None:
        now = self._clock()
        retry_at = None
        if job.attempts < job.max_attempts:
            delay = self._backoff * (2 ** (job.attempts - 1)) * random.uniform(0.8, 1.2)
            retry_at = now + delay
        # A stable word, never a class name: a job's error may be shown (a backfill's).
        error = str(exc) if isinstance(exc, RetryLater) else error_code(exc)
        await self._record(
            job, lambda jobs: jobs.fail(job, self.worker_id, error, now, retry_at)
        )
        log.warning(
            "jobs.failed",
            job_id=job.id,
            kind=job.kind,
            attempt=job.attempts,
            error=error,
            dead=retry_at is None,
        )

    async def _record(
        self, job: Job, write: Callable[[JobRepository], Awaitable[Any]]
    ) -> Any:
        """Write a job's outcome, retrying while the database is away. Past the lease another
        worker owns the job, so the write is dropped then (the job runs again after the lease)."""
        give_up = time.monotonic() + self._lease.total_seconds()
        delay = self._record_retry_s
        while True:
            try:
                async with self._sessions() as session:
                    result = await write(JobRepository(session))
                    await session.commit()
                    return result
            except Exception as exc:
                if time.monotonic() + delay > give_up:
                    log.error(
                        "jobs.record_failed",
                        job_id=job.id,
                        error_type=type(exc).__name__,
                    )
                    return None
                log.warning(
                    "jobs.record_retry", job_id=job.id, error_type=type(exc).__name__
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
