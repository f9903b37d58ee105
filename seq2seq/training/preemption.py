"""Stop requests from the outside: SIGTERM (a cluster scheduler before preemption) or SIGINT.

While the training loop runs, either signal only sets a flag; the loop polls it at each update
boundary, agrees on it with the other DDP ranks (so all stop at the same update), writes
``last.pt`` and returns. A second SIGINT while the checkpoint is being written interrupts at
once (an impatient Ctrl-C twice). Handlers can only be installed from the main thread; elsewhere
(a trainer driven from a worker thread) signals keep their previous behaviour.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Context manager that turns SIGTERM/SIGINT into :attr:`received`.

    Attributes:
        received: the first signal's name (``"SIGTERM"``, ``"SIGINT"``), or None.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.received is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is None:
            log.warning("%s received: stopping after this update and writing a checkpoint", name)
        self.received = self.received or name

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


__all__ = ["SIGNALS", "StopSignals"]
