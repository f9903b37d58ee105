"""Who may call ``/predict``, and how many requests are accepted at once.

* **API keys** (optional): with keys configured (``api_keys=[...]`` or a file named by the
  environment variable :data:`KEYS_FILE_ENV`, one key per line), a request needs
  ``Authorization: Bearer <key>``; otherwise it is answered ``401`` with
  ``WWW-Authenticate: Bearer``. Keys are compared in constant time and never logged, echoed or
  shown in ``/info``.
* **Bounded queue**: at most ``max_queue`` requests are accepted at once (waiting or being
  translated); one more is answered ``503`` with ``Retry-After`` at once instead of waiting
  without bound. Together with the per-request deadline (``timeout``: a request that waited
  longer in the queue is answered ``504``) an overloaded server answers every request quickly.

Runs in the HTTP process, before the body is read, so a rejected request costs nothing.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from pathlib import Path

from fastapi import HTTPException, Request

KEYS_FILE_ENV = "SEQ2SEQ_API_KEYS_FILE"
RETRY_AFTER_S = 1


def load_api_keys(configured: Sequence[str], environ: dict[str, str] | None = None) -> list[str]:
    """The configured keys plus those of the file named by :data:`KEYS_FILE_ENV`.

    Blank lines and lines starting with ``#`` in the file are skipped; surrounding whitespace is
    stripped.

    Raises:
        ValueError: the file cannot be read, or a key is empty (the message names the file, never
            a key).
    """
    keys = [str(k).strip() for k in configured]
    if any(not k for k in keys):
        raise ValueError("api_keys holds an empty key")
    path = (os.environ if environ is None else environ).get(KEYS_FILE_ENV)
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise ValueError(f"{KEYS_FILE_ENV}={path}: cannot read the file ({err.strerror})") \
                from None
        keys += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        if len(keys) == len(configured):
            raise ValueError(f"{KEYS_FILE_ENV}={path}: the file holds no key")
    return keys


class Admission:
    """Authorisation and the bound on accepted requests, for one HTTP process.

    Args:
        api_keys: accepted keys (empty: no authorisation).
        max_queue: requests accepted at once.
    """

    def __init__(self, api_keys: Sequence[str], max_queue: int) -> None:
        self._keys = [k.encode("utf-8") for k in api_keys]
        self.max_queue = max(1, int(max_queue))
        self.in_flight = 0

    @property
    def auth(self) -> str:
        """``"bearer"`` when keys are required, else ``"none"`` (for ``/info``)."""
        return "bearer" if self._keys else "none"

    def check_key(self, request: Request) -> None:
        """Raise 401 unless the request carries one of the keys (no-op without keys)."""
        if not self._keys:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode("utf-8")
        ok = scheme.lower() == "bearer" and given and any(
            hmac.compare_digest(given, k) for k in self._keys)
        if not ok:
            raise HTTPException(401, "missing or invalid API key: send the header "
                                     "'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})

    def enter(self) -> None:
        """Accept one more request, or raise 503 with ``Retry-After`` when the queue is full."""
        if self.in_flight >= self.max_queue:
            raise HTTPException(503, f"server busy: {self.in_flight} requests are queued or "
                                     f"being translated (max_queue={self.max_queue}); retry later",
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        self.in_flight += 1

    def leave(self) -> None:
        """A request accepted by :meth:`enter` is answered."""
        self.in_flight -= 1


__all__ = ["KEYS_FILE_ENV", "Admission", "load_api_keys"]
