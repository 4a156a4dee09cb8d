"""Counting calls without touching the database in the request: a buffer flushed in batches."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

logger = logging.getLogger(__name__)
_start_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One API call made with a valid key."""

    api_key_id: int
    merchant_id: int
    at: datetime
    method: str
    route: str
    status: int
    latency_ms: float
    origin: str | None
    outcome: str
    error_code: str | None = None
    client_ip: str | None = None
    request_id: str | None = None


class UsageRecorder:
    """A per-process buffer of calls, written by a background thread every few seconds."""

    def __init__(
        self,
        write_batch: Callable[[list[CallRecord]], None],
        flush_interval: float = 2.0,
        max_buffer: int = 100_000,
    ) -> None:
        self._write_batch = write_batch
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self._buffer: list[CallRecord] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self.dropped = 0
        # A weak reference: an app that is gone (tests make many) is not kept alive until exit.
        atexit.register(_flush_at_exit, weakref.ref(self))

    def record(self, call: CallRecord) -> None:
        """Buffer a call (no I/O); starts this process's flusher on first use (after a fork too)."""
        if self._pid != os.getpid():
            with _start_lock:
                if self._pid != os.getpid():
                    self._start()
        with self._lock:
            if len(self._buffer) >= self.max_buffer:
                self.dropped += 1  # the database is far behind; never grow without bound
                return
            self._buffer.append(call)

    def pending(self) -> int:
        """How many calls wait to be written."""
        with self._lock:
            return len(self._buffer)

    def flush(self) -> int:
        """Write everything buffered now; returns how many calls were written."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                self._write_batch(batch)
            except Exception:
                logger.exception(
                    "Writing %d usage records failed; kept for the next flush", len(batch)
                )
                with self._lock:
                    kept = batch[: max(0, self.max_buffer - len(self._buffer))]
                    self._buffer[:0] = kept
                    self.dropped += len(batch) - len(kept)  # no room: counted, never silent
                return 0
            return len(batch)

    def _start(self) -> None:
        """Start the flusher thread of this process."""
        if self._pid is not None:
            # A forked worker: the parent flushes what it had buffered; threads did not survive.
            self._buffer = []
            self._lock = threading.Lock()
            self._flush_lock = threading.Lock()
            self._wake = threading.Event()
        self._pid = os.getpid()
        if self.flush_interval <= 0:
            return  # flushed by hand (tests, scripts) or at exit
        self._thread = threading.Thread(target=self._run, name="usage-flusher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the flusher thread after a last flush (worker exit)."""
        self._wake.set()
        self.flush()

    def _run(self) -> None:
        """Flush every `flush_interval` seconds until the process ends."""
        while not self._wake.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # pragma: no cover - flush already logs; keep the thread alive
                logger.exception("Usage flusher failed")


def _flush_at_exit(reference: weakref.ref[UsageRecorder]) -> None:
    """Write what a recorder still holds when the process exits cleanly (Ctrl-C included)."""
    recorder = reference()
    if recorder is not None:
        recorder.flush()
