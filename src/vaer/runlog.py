"""The run's log file: library log records and warnings go there, not to the console.

MLflow, alembic, huey and SQLAlchemy log to stderr through handlers of their own, and
libraries warn with :func:`warnings.warn` (MLflow's integer-schema hint, its dataset-source
guesses). A user cannot act on these, and they break the progress lines, so while
:meth:`RunLog.capturing` is active every log record and every warning is written to the
run's log file instead: kept in memory until the run knows its folder, then written to
``<report.out>/run.log`` (:meth:`RunLog.write_to`) and appended to as the run goes on.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RunLog:
    """Collects log records and warnings of a run, for its ``run.log``.

    Examples
    --------
    >>> log = RunLog()
    >>> with log.capturing():
    ...     logging.getLogger("mlflow").warning("kept out of the console")
    >>> "kept out of the console" in log.text()
    True
    """

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._file: IO[str] | None = None
        self.path: Path | None = None
        self._handler: logging.StreamHandler[IO[str]] = logging.StreamHandler(self._buffer)
        self._handler.setFormatter(logging.Formatter(FORMAT))
        self._handler.setLevel(logging.INFO)

    def text(self) -> str:
        """Everything captured so far."""
        if self.path is not None:
            self._handler.flush()
            return self.path.read_text(encoding="utf-8")
        return self._buffer.getvalue()

    def write_to(self, path: Path) -> None:
        """Write what was captured to ``path`` and append every later record there.

        Parameters
        ----------
        path : Path
            The run's log file (its folder is created).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed by capturing)
        handle.write(self._buffer.getvalue())
        handle.flush()
        self._handler.setStream(handle)
        if self._file is not None:
            self._file.close()
        self._file = handle
        self.path = path

    @contextmanager
    def capturing(self, import_first: Iterable[str] = ()) -> Iterator[RunLog]:
        """Send every log record (INFO and above) and warning to this log while active.

        Parameters
        ----------
        import_first : iterable of str
            Modules to import before taking over their loggers (``mlflow`` installs its
            own stderr handlers when imported).

        Yields
        ------
        RunLog
            ``self``.
        """
        for module in import_first:
            __import__(module)
        saved = _take_over(self._handler)
        root_level = logging.root.level
        logging.root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            yield self
        finally:
            logging.captureWarnings(False)
            logging.root.setLevel(root_level)
            for logger, handlers, propagate in saved:
                logger.handlers = handlers
                logger.propagate = propagate
            self._handler.flush()
            if self._file is not None:
                handle, self._file = self._file, None
                self._handler.setStream(io.StringIO())
                handle.close()


def _is_console(handler: logging.Handler) -> bool:
    if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
        return False
    stream = handler.stream
    # MLflow's handlers write to its own stream object, which writes to stderr
    return stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__) or type(
        stream
    ).__module__.startswith("mlflow")


def _take_over(
    handler: logging.Handler,
) -> list[tuple[logging.Logger, list[logging.Handler], bool]]:
    """Swap every console handler of every existing logger (and the root's) for
    ``handler``; returns what to restore."""
    saved = []
    loggers = [logging.root, logging.getLogger("py.warnings")]
    loggers += [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in dict.fromkeys(loggers):
        console = [h for h in logger.handlers if _is_console(h)]
        if logger is not logging.root and not console:
            continue
        saved.append((logger, list(logger.handlers), logger.propagate))
        kept = [h for h in logger.handlers if h not in console]
        logger.handlers = [*kept, handler]
        if logger is not logging.root:
            logger.propagate = False
    return saved
