"""Graceful stop of ``seq2seq-serve`` on SIGTERM or SIGINT.

litserve's own stop path closes the response queues before the HTTP processes are told to stop,
so requests in flight at a SIGTERM were lost (and a plain SIGTERM killed the main process
outright). Here the main process, on the first SIGTERM/SIGINT:

1. sets the ``draining`` event (shared with the HTTP processes, which were forked after it was
   made): a request whose body has not fully arrived (a half-open or slow client) is answered
   ``503`` at once instead of holding the shutdown up, since nothing of it was queued yet;
2. sends SIGTERM to the uvicorn HTTP processes: they stop accepting connections, close idle
   keep-alive connections and finish the requests in flight (uvicorn's graceful shutdown, at
   most ``grace`` seconds, then its tasks are cancelled) while the model worker keeps
   translating and the response path stays open;
3. waits for them to exit (``grace`` plus a little, then litserve kills them);
4. sets litserve's shutdown event, so ``LitServer.run`` stops the model worker and returns, and
   the process exits 0.

The model worker ignores SIGINT (:func:`ignore_sigint`), so a Ctrl-C sent to the whole process
group does not kill a translation in progress either.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

JOIN_SLACK_S = 2.0  # beyond the grace: uvicorn's own cancel-and-close after its timeout


def ignore_sigint() -> None:
    """In the model worker: leave SIGINT to the main process, which stops the worker last."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def install_graceful_stop(http_workers: Sequence[BaseProcess | threading.Thread],
                          shutdown: Callable[[], None], grace: float,
                          draining: Any | None = None) -> None:
    """Handle SIGTERM/SIGINT in this (the main) process as described in the module docstring.

    Args:
        http_workers: the uvicorn processes (threads are left to ``shutdown``). litserve forks
            them from the ``"fork"`` context, whose process class is no ``mp.Process``: any
            :class:`~multiprocessing.process.BaseProcess` is signalled.
        shutdown: sets litserve's shutdown event.
        grace: seconds the HTTP processes have to answer the requests in flight (their uvicorn
            ``timeout_graceful_shutdown``).
        draining: an event shared with the HTTP processes, set first (see the module docstring).
    """
    main_pid = os.getpid()
    started = threading.Event()

    def drain() -> None:
        if draining is not None:
            draining.set()
        for w in http_workers:
            if isinstance(w, BaseProcess) and w.is_alive() and w.pid is not None:
                os.kill(w.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace + JOIN_SLACK_S
        for w in http_workers:
            w.join(timeout=max(0.0, deadline - time.monotonic()))
        logger.info("requests in flight answered; stopping the model worker")
        shutdown()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != main_pid or started.is_set():
            return
        started.set()
        logger.info("%s received: no new connections; finishing the requests in flight",
                    signal.Signals(signum).name)
        threading.Thread(target=drain, name="graceful-stop", daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)


__all__ = ["ignore_sigint", "install_graceful_stop"]
