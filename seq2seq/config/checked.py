"""How the config dataclasses check themselves: choices converted from strings, numbers in
their :class:`Range`, rules across fields; and :func:`plain`, their plain-data form."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any, ClassVar

from seq2seq.config.choices import Choice


@dataclass(frozen=True)
class Range:
    """The allowed values of a number: ``lo``/``hi`` bounds (None = none), open or closed.

    Non-finite values (NaN, infinity) are never allowed.
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    note: str = ""

    def describe(self) -> str:
        """``">= 1"``, ``"positive"``, ``"in [0, 1)"`` ..."""
        if self.lo is None and self.hi is None:
            return "a finite number"
        if self.hi is None:
            if self.lo_open and self.lo == 0:
                return "positive"
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return (f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}"
                f"{')' if self.hi_open else ']'}")

    def holds(self, value: float) -> bool:
        """Whether ``value`` is allowed."""
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)


AT_LEAST_1 = Range(1)
AT_LEAST_0 = Range(0)
POSITIVE = Range(0, lo_open=True)
FRACTION = Range(0, 1, hi_open=True)  # [0, 1)
FINITE = Range()


class _Checked:
    """Mixin: convert the ``_choices`` fields to their enum and check the ``_ranges`` fields
    (then :meth:`_check` for rules across fields); every message names the key."""

    _section: ClassVar[str] = ""
    _choices: ClassVar[dict[str, type[Choice]]] = {}
    _ranges: ClassVar[dict[str, Range]] = {}

    def _key(self, name: str) -> str:
        """The key as the user spells it (``search.beam_size``; top-level keys bare)."""
        return f"{self._section}.{name}" if self._section else name

    def __post_init__(self) -> None:
        for name, kind in self._choices.items():
            value = getattr(self, name)
            if isinstance(value, kind):
                continue
            try:
                setattr(self, name, kind(value))
            except ValueError:
                raise ValueError(f"{self._key(name)} must be one of {kind.values()}, "
                                 f"got {value!r}") from None
        for name, allowed in self._ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not allowed.holds(value):
                note = f" {allowed.note}" if allowed.note else ""
                raise ValueError(f"{self._key(name)} must be {allowed.describe()}{note}, "
                                 f"got {value!r}")
        self._check()

    def _check(self) -> None:
        """Rules across fields (none by default)."""


def plain(obj: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` with every :class:`Choice` replaced by its string.

    What a checkpoint or a JSON report stores: a bundle must hold only plain data to load with
    ``weights_only=True``.
    """
    return asdict(obj, dict_factory=lambda kv: {k: (v.value if isinstance(v, Enum) else v)
                                                for k, v in kv})
