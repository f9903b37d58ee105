"""Who may call the translating endpoints, how much, and how many requests are accepted at once.

* **API keys** (optional): with keys configured (``api_keys=[...]`` or a file named by the
  environment variable :data:`KEYS_FILE_ENV`), a request needs one: ``Authorization: Bearer
  <key>`` (or, on the LibreTranslate endpoints, ``api_key`` in the body); ``/predict`` and
  ``/score`` answer ``401`` with ``WWW-Authenticate: Bearer`` otherwise. Keys are compared in
  constant time and never logged, echoed, counted in metrics or shown in ``/info``.
* **Per-key limits**, in the keys file after the key (each optional; a key alone has none)::

      # key                             limits
      3f9c...e1   requests_per_minute=60 chars_per_day=200000 texts_per_request=16

  Over ``requests_per_minute`` (a sliding 60-second window) or ``chars_per_day`` (source
  characters since 00:00 UTC) a request is answered ``429`` with ``Retry-After`` (the seconds
  until it would be accepted) and a message naming the limit; over ``texts_per_request`` it is a
  ``400`` (retrying the same request cannot help). Other keys are unaffected. The counters live
  in the server's HTTP process (one per server, as ``num_api_servers=1``): a restart resets
  them, and several servers behind a load balancer each count their own.
* **Bounded queue**: at most ``max_queue`` requests are accepted at once (waiting or being
  translated); one more is answered ``503`` with ``Retry-After`` at once instead of waiting
  without bound. Together with the per-request deadline (``timeout``: a request that waited
  longer in the queue is answered ``504``) an overloaded server answers every request quickly.

Runs in the HTTP process, before the body is read where it can, so a rejected request costs
nothing.
"""

from __future__ import annotations

import collections
import datetime as dt
import hmac
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fastapi import HTTPException, Request

KEYS_FILE_ENV = "SEQ2SEQ_API_KEYS_FILE"
RETRY_AFTER_S = 1
LIMITS = ("requests_per_minute", "chars_per_day", "texts_per_request")


class ApiKey(str):
    """A key (compares equal to its string) and its limits (0 = none)."""

    requests_per_minute: int = 0
    chars_per_day: int = 0
    texts_per_request: int = 0

    @classmethod
    def parse(cls, line: str, where: str) -> ApiKey:
        """``KEY [name=value ...]`` (see the module docstring).

        Raises:
            ValueError: an unknown limit or a value that is not a whole number >= 0; the message
                names ``where`` and the limit, never the key.
        """
        fields = line.split()
        key = cls(fields[0])
        for item in fields[1:]:
            name, _, value = item.partition("=")
            if name not in LIMITS:
                raise ValueError(f"{where}: unknown limit {name!r}; the limits are "
                                 f"{', '.join(LIMITS)}")
            if not value.isdigit():
                raise ValueError(f"{where}: {name} must be a whole number >= 0, got {value!r}")
            setattr(key, name, int(value))
        return key


def load_api_keys(configured: Sequence[str], environ: dict[str, str] | None = None) -> list[ApiKey]:
    """The configured keys (no limits) plus those of the file named by :data:`KEYS_FILE_ENV`.

    Blank lines and lines starting with ``#`` in the file are skipped; surrounding whitespace is
    stripped.

    Raises:
        ValueError: the file cannot be read, holds no key or a bad limit, or a configured key is
            empty (the message names the file and the line, never a key).
    """
    keys = [ApiKey(str(k).strip()) for k in configured]
    if any(not k for k in keys):
        raise ValueError("api_keys holds an empty key")
    path = (os.environ if environ is None else environ).get(KEYS_FILE_ENV)
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise ValueError(f"{KEYS_FILE_ENV}={path}: cannot read the file ({err.strerror})") \
                from None
        keys += [ApiKey.parse(ln.strip(), f"{KEYS_FILE_ENV}={path}, line {n}")
                 for n, ln in enumerate(lines, start=1)
                 if ln.strip() and not ln.lstrip().startswith("#")]
        if len(keys) == len(configured):
            raise ValueError(f"{KEYS_FILE_ENV}={path}: the file holds no key")
    return keys


class KeyRejected(HTTPException):
    """401: no key (``missing``) or an unknown one."""

    def __init__(self, missing: bool) -> None:
        super().__init__(401, "missing or invalid API key: send the header 'Authorization: "
                              "Bearer <key>'", headers={"WWW-Authenticate": "Bearer"})
        self.missing = missing


class LimitExceeded(HTTPException):
    """429 (with ``Retry-After``) or 400: a key's limit; ``limit`` names it."""

    def __init__(self, status: int, limit: str, message: str, retry_after: int | None = None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        super().__init__(status, message, headers=headers)
        self.limit = limit


def _seconds_to_midnight_utc(now: dt.datetime) -> int:
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((tomorrow - now).total_seconds()))


class Admission:
    """Keys, per-key limits and the bound on accepted requests, for one HTTP process.

    Args:
        api_keys: accepted keys (plain strings or :class:`ApiKey` with limits; empty: no
            authorisation).
        max_queue: requests accepted at once.
        clock: monotonic seconds (tests replace it).
        utcnow: the current UTC time (tests replace it).
    """

    def __init__(self, api_keys: Sequence[str], max_queue: int,
                 clock: Callable[[], float] = time.monotonic,
                 utcnow: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
                 ) -> None:
        self._keys = [(k.encode("utf-8"), k if isinstance(k, ApiKey) else ApiKey(k))
                      for k in api_keys]
        self.max_queue = max(1, int(max_queue))
        self.in_flight = 0
        self._clock, self._utcnow = clock, utcnow
        self._recent: dict[int, collections.deque[float]] = {}  # key index -> request times
        self._chars: dict[int, tuple[dt.date, int]] = {}  # key index -> (day, characters)

    @property
    def auth(self) -> str:
        """``"bearer"`` when keys are required, else ``"none"`` (for ``/info``)."""
        return "bearer" if self._keys else "none"

    def identify(self, request: Request, body_key: str | None = None) -> int | None:
        """The caller's key (its index; None when no keys are configured).

        Args:
            request: the request (``Authorization: Bearer <key>``).
            body_key: a key sent in the body (LibreTranslate's ``api_key``), used when the
                header has none.

        Raises:
            KeyRejected: no key, or not one of the configured ones.
        """
        if not self._keys:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else ""
        if not given and isinstance(body_key, str):
            given = body_key.strip()
        if not given:
            raise KeyRejected(missing=True)
        raw = given.encode("utf-8")
        found = None
        for i, (k, _) in enumerate(self._keys):  # no early exit: the same time for every key
            if hmac.compare_digest(raw, k) and found is None:
                found = i
        if found is None:
            raise KeyRejected(missing=False)
        return found

    def check_key(self, request: Request) -> None:
        """Raise 401 unless the request carries one of the keys (no-op without keys)."""
        self.identify(request)

    def charge_request(self, key: int | None) -> None:
        """Count one request of ``key`` against its ``requests_per_minute``.

        Raises:
            LimitExceeded: 429 when the last minute already holds that many.
        """
        limit = self._keys[key][1].requests_per_minute if key is not None else 0
        if not limit:
            return
        now = self._clock()
        window = self._recent.setdefault(key, collections.deque())
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= limit:
            wait = max(1, math.ceil(window[0] + 60.0 - now))
            raise LimitExceeded(429, "requests_per_minute", f"API key limit reached: {limit} "
                                f"requests per minute; retry in {wait} s", retry_after=wait)
        window.append(now)

    def charge_texts(self, key: int | None, texts: int, chars: int) -> None:
        """Count a request's texts and source characters against ``texts_per_request`` and
        ``chars_per_day``.

        Raises:
            LimitExceeded: 400 over ``texts_per_request``; 429 over ``chars_per_day``.
        """
        if key is None:
            return
        spec = self._keys[key][1]
        if spec.texts_per_request and texts > spec.texts_per_request:
            raise LimitExceeded(400, "texts_per_request", f"API key limit: "
                                f"{spec.texts_per_request} texts per request; this request has "
                                f"{texts}")
        if not spec.chars_per_day:
            return
        now = self._utcnow()
        day, used = self._chars.get(key, (now.date(), 0))
        if day != now.date():
            used = 0
        if used + chars > spec.chars_per_day:
            wait = _seconds_to_midnight_utc(now)
            raise LimitExceeded(429, "chars_per_day", f"API key limit reached: "
                                f"{spec.chars_per_day} characters per day ({used} used today, "
                                f"this request has {chars}); retry after 00:00 UTC",
                                retry_after=wait)
        self._chars[key] = (now.date(), used + chars)

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


__all__ = ["KEYS_FILE_ENV", "LIMITS", "Admission", "ApiKey", "KeyRejected", "LimitExceeded",
           "load_api_keys"]
