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

A signal may also reach every process of the server at once: Ctrl-C sends SIGINT to the
terminal's process group, and systemd (``KillMode=control-group``, its default) or ``pkill -f``
send SIGTERM to all of them. The other processes therefore leave the stop to the main process:

* the model worker ignores SIGINT, and SIGTERM until the main process allows it after the last
  answer (:func:`worker_signals`; litserve then stops it with SIGTERM);
* the multiprocessing manager, which holds the queues and events every process talks through,
  is started with SIGTERM ignored (:func:`manager_ignoring_sigterm`; it ignores SIGINT itself)
  and is shut down by litserve last;
* the uvicorn processes handle either signal as step 2 does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

JOIN_SLACK_S = 2.0  # beyond the grace: uvicorn's own cancel-and-close after its timeout


def worker_signals(may_stop: Any | None) -> None:
    """In the model worker: leave SIGINT to the main process, and SIGTERM until ``may_stop`` (an
    event the main process sets once the HTTP processes have answered everything) is set.

    Args:
        may_stop: a ``multiprocessing`` event shared with the main process, or None (SIGTERM
            keeps its default action).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if may_stop is None:
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if may_stop.is_set():  # the main process's own stop: die as SIGTERM always did
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            logger.info("SIGTERM: the main process stops this worker after the last answer")

    signal.signal(signal.SIGTERM, on_sigterm)


@contextlib.contextmanager
def manager_ignoring_sigterm() -> Iterator[None]:
    """Within: SIGTERM is ignored, so a process started here (the multiprocessing manager)
    inherits that (across fork and exec alike); restored on exit."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def install_graceful_stop(http_workers: Sequence[BaseProcess | threading.Thread],
                          shutdown: Callable[[], None], grace: float,
                          draining: Any | None = None, may_stop: Any | None = None) -> None:
    """Handle SIGTERM/SIGINT in this (the main) process as described in the module docstring.

    Args:
        http_workers: the uvicorn processes (threads are left to ``shutdown``). litserve forks
            them from the ``"fork"`` context, whose process class is no ``mp.Process``: any
            :class:`~multiprocessing.process.BaseProcess` is signalled.
        shutdown: sets litserve's shutdown event.
        grace: seconds the HTTP processes have to answer the requests in flight (their uvicorn
            ``timeout_graceful_shutdown``).
        draining: an event shared with the HTTP processes, set first (see the module docstring).
        may_stop: the model worker's event (:func:`worker_signals`), set before ``shutdown``.
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
        if may_stop is not None:
            may_stop.set()
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


__all__ = ["install_graceful_stop", "manager_ignoring_sigterm", "worker_signals"]
