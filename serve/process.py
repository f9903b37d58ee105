"""``ServerProcess``: ``seq2seq-serve`` in a subprocess on a free 127.0.0.1 port, for tests and
benchmarks (a context manager that waits for ``/health`` and stops the whole process group)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """Run ``seq2seq-serve`` as a subprocess (tests, benchmarks); a context manager.

    The server gets its own process group, so :meth:`stop` (SIGINT, then SIGKILL after a grace
    period) ends it together with its litserve worker processes.

    Args:
        checkpoint: bundle path (or a list of them: an ensemble); None with a ``models=FILE``
            override.
        overrides: extra ``key=value`` overrides (e.g. ``max_batch_size=1``).
        port: port on 127.0.0.1 (a free one when None).
        log_path: file for the server's stdout/stderr (a temporary file when None).
        ready_timeout: seconds to wait for ``/health`` to answer 200.
        env: environment variables to add (e.g. the API-keys file).
    """

    def __init__(self, checkpoint: str | Path | list[str | Path] | None,
                 overrides: tuple[str, ...] | list[str] = (),
                 port: int | None = None, log_path: str | Path | None = None,
                 ready_timeout: float = 120.0, env: dict[str, str] | None = None) -> None:
        self.overrides = list(overrides)
        if checkpoint is not None:
            paths = checkpoint if isinstance(checkpoint, list) else [checkpoint]
            resolved = [str(Path(p).resolve()) for p in paths]
            one = resolved[0] if len(resolved) == 1 else f"[{','.join(resolved)}]"
            self.overrides.insert(0, f"checkpoint={one}")
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_timeout = ready_timeout
        self.log_path = Path(log_path) if log_path else Path(
            tempfile.mkstemp(prefix="seq2seq-serve-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        """Start the server and block until ``/health`` answers 200.

        Raises:
            RuntimeError: the server exited or was not ready in time (with its log's tail).
        """
        import requests

        cmd = [sys.executable, "-m", "seq2seq.cli.serve", "host=127.0.0.1", f"port={self.port}",
               *self.overrides]
        env = {**os.environ, **self.env} if self.env else None
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=env)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after {self.ready_timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        """Last ``n`` lines of the server's output."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, grace: float = 10.0) -> None:
        """Interrupt the server's process group; kill it if it is still there after ``grace``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the server's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGINT)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # stragglers (workers) of this group only
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["ServerProcess", "free_port"]
