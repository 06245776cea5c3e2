"""SIGINT and SIGTERM during a command: a run stops at its next progress report and its
MLflow run ends KILLED with the reason."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Interrupts:
    """SIGINT and SIGTERM as KeyboardInterrupt, raised again at the next progress report.

    Python drops an exception raised while a finalizer or weakref callback runs (garbage
    collection prints "Exception ignored in ..." and goes on), so a Ctrl-C that lands
    there would be lost and the run would finish as if nothing happened. The signal is
    remembered, and :meth:`check` (called at every progress report and finished task)
    raises it again. A terminated run ends KILLED with the reason, not RUNNING.
    """

    def __init__(self) -> None:
        self.reason: str | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.reason = (
            "" if signum == signal.SIGINT else f"terminated by signal {signal.Signals(signum).name}"
        )
        self.check()

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal has arrived."""
        if self.reason is not None:
            raise KeyboardInterrupt(self.reason) if self.reason else KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Handle SIGINT and SIGTERM while the block runs (not outside the main thread)."""
        try:
            previous = {
                sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)
            }
        except ValueError:  # not the main thread (e.g. inside a test runner's thread)
            yield self
            return
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
