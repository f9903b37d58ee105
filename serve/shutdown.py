"""Graceful stop of ``seq2seq-serve`` on SIGTERM or SIGINT.

litserve's own stop path closes the response queues before the HTTP processes are told to stop,
so requests in flight at a SIGTERM were lost (and a plain SIGTERM killed the main process
outright). Here the main process, on the first SIGTERM/SIGINT:

1. sends SIGTERM to the uvicorn HTTP processes: they stop accepting connections and finish the
   requests in flight (uvicorn's graceful shutdown) while the model worker keeps translating and
   the response path stays open;
2. waits for them to exit (at most ``grace`` seconds, then litserve kills them);
3. sets litserve's shutdown event, so ``LitServer.run`` stops the model worker and returns, and
   the process exits 0.

The model worker ignores SIGINT (:func:`ignore_sigint`), so a Ctrl-C sent to the whole process
group does not kill a translation in progress either.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

logger = logging.getLogger(__name__)


def ignore_sigint() -> None:
    """In the model worker: leave SIGINT to the main process, which stops the worker last."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def install_graceful_stop(http_workers: Sequence[mp.Process | threading.Thread],
                          shutdown: Callable[[], None], grace: float) -> None:
    """Handle SIGTERM/SIGINT in this (the main) process as described in the module docstring.

    Args:
        http_workers: the uvicorn processes (threads are left to ``shutdown``).
        shutdown: sets litserve's shutdown event.
        grace: seconds to wait for the HTTP processes to finish their requests.
    """
    main_pid = os.getpid()
    started = threading.Event()

    def drain() -> None:
        for w in http_workers:
            if isinstance(w, mp.Process) and w.is_alive() and w.pid is not None:
                os.kill(w.pid, signal.SIGTERM)
        for w in http_workers:
            w.join(timeout=grace)
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
