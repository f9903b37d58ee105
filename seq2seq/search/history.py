"""History: what search keeps of each hypothesis besides its score.

Per row the generated tokens and, when asked for, the attention rows of every step
(``return_alignment``) and the log-prob of every token (``return_scores``), in preallocated
tensors of ``T`` steps. Greedy search, beam search and sampling keep one for their live rows and
one for their results, and move rows between them with the same few operations, so the optional
parts cost one ``if`` here instead of one in every search loop::

    hist = History.empty((N,), T, S, device, align=True, scores=False)
    hist.write(t, tokens=tok, attn=state.attn)   # step t of every row
    done.put(sent[ended], hist.select(ended))    # finished rows into the results
    hist = hist.select(keep)                     # the rows still searching

The leading dimensions are the rows: ``(N,)`` for live hypotheses, ``(B, K)`` for a beam's
finished set (:meth:`reshape`, :meth:`merge`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class History:
    """Tokens, and optionally attention rows and token log-probs, of a set of rows.

    Attributes:
        tokens: ``(*R, T)`` long generated tokens (BOS and EOS not stored).
        attn: ``(*R, T, S)`` float32 attention rows per step, or None.
        lps: ``(*R, T)`` float32 log-prob of the token of each step, or None.
    """

    tokens: torch.Tensor
    attn: torch.Tensor | None = None
    lps: torch.Tensor | None = None

    @classmethod
    def empty(cls, rows: tuple[int, ...], steps: int, src_len: int, device: torch.device,
              align: bool, scores: bool) -> History:
        """Zeros for ``rows`` rows of ``steps`` steps (attention over ``src_len`` positions)."""
        return cls(torch.zeros(*rows, steps, dtype=torch.long, device=device),  # (*R, T)
                   torch.zeros(*rows, steps, src_len, device=device) if align else None,
                   torch.zeros(*rows, steps, device=device) if scores else None)

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> History:
        return History(fn(self.tokens), None if self.attn is None else fn(self.attn),
                       None if self.lps is None else fn(self.lps))

    def write(self, t: int, tokens: torch.Tensor | None = None, attn: torch.Tensor | None = None,
              lps: torch.Tensor | None = None) -> None:
        """Set step ``t`` of every row (``(N,)`` tokens and log-probs, ``(N, S)`` attention);
        the parts this history does not keep are ignored."""
        if tokens is not None:
            self.tokens[..., t] = tokens
        if self.attn is not None and attn is not None:
            self.attn[..., t, :] = attn.float()
        if self.lps is not None and lps is not None:
            self.lps[..., t] = lps

    def select(self, index: torch.Tensor) -> History:
        """The rows ``index`` (a bool mask or ``(N',)`` long ids over the first dimension)."""
        return self._map(lambda x: x[index])

    def put(self, index: torch.Tensor, rows: History) -> None:
        """Rows ``index`` of this history become ``rows``."""
        self.tokens[index] = rows.tokens
        if self.attn is not None:
            self.attn[index] = rows.attn
        if self.lps is not None:
            self.lps[index] = rows.lps

    def reshape(self, *rows: int) -> History:
        """The same rows with leading dimensions ``rows`` (a view, e.g. ``(b * K,)`` ->
        ``(b, K)``)."""
        return History(self.tokens.view(*rows, self.tokens.shape[-1]),
                       None if self.attn is None else self.attn.view(*rows, *self.attn.shape[-2:]),
                       None if self.lps is None else self.lps.view(*rows, self.lps.shape[-1]))

    def ending(self, t: int, eos_lps: torch.Tensor) -> History:
        """The rows as hypotheses that end with EOS at step ``t``: the log-probs (a copy) get
        ``eos_lps`` ``(N,)`` at ``t``; tokens and attention are shared, not copied."""
        if self.lps is None:
            return self
        lps = self.lps.clone()
        lps[..., t] = eos_lps
        return History(self.tokens, self.attn, lps)

    def merge(self, other: History, order: torch.Tensor) -> History:
        """``(b, K)`` rows of ``self`` and ``(b, K2)`` of ``other`` side by side, then ``order``
        ``(b, K')`` picks per sentence which (indices into the ``K + K2`` of them)."""
        def pick(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            both = torch.cat([a, b], 1)  # (b, K + K2, ...)
            return both.take_along_dim(order.view(*order.shape, *[1] * (both.dim() - 2)), 1)
        return History(pick(self.tokens, other.tokens),
                       None if self.attn is None else pick(self.attn, other.attn),
                       None if self.lps is None else pick(self.lps, other.lps))

    def outputs(self, row: tuple[int, ...], length: int,
                src_len: int) -> tuple[list[int], torch.Tensor | None, list[float] | None]:
        """One row's hypothesis parts: its ``length`` tokens, its attention rows
        ``(length + 1, src_len)`` (EOS step included; a copy) and its ``length + 1`` token
        log-probs (or None for the parts not kept)."""
        attn = None if self.attn is None else self.attn[row][:length + 1, :src_len].clone()
        lps = None if self.lps is None else self.lps[row][:length + 1].tolist()
        return self.tokens[row][:length].tolist(), attn, lps


__all__ = ["History"]
