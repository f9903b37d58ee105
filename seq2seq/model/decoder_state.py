"""Incremental decoding state of the attention decoder (what search reorders between steps)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DecoderState:
    """Incremental decoding state for ``N`` rows (hypotheses).

    The per-source tensors (``src_*``) are kept once per SOURCE row: the ``N = B * group`` rows
    come in ``B`` runs of ``group`` consecutive rows that share a source row (the hypotheses of
    one sentence in beam search), so repeating and reordering hypotheses never copies the
    encoder memory. The properties :attr:`memory`, :attr:`keys`, :attr:`bias` and :attr:`mask`
    give the per-row ``(N, ...)`` view (materialised only when ``group > 1``).

    Attributes:
        hidden: ``(L, N, H)`` decoder hidden state per layer.
        cell: ``(L, N, H)`` LSTM cell state per layer, or None for a GRU.
        feed: ``(N, H)`` previous attentional vector (zeros before the first step).
        src_memory: ``(B, S, 2H)`` encoder outputs.
        src_keys: ``(B, S, K)`` attention keys precomputed from ``src_memory``.
        src_bias: ``(B, S)`` additive attention mask (0 real, ``-inf`` padding).
        src_mask: ``(B, S)`` bool, True at real source positions.
        attn: ``(N, S)`` attention weights of the last step, or None before the first step.
        group: rows per source row (``N = B * group``).
        src_lens: true length of each of the ``B`` source rows (lets attention skip padding),
            or None.
    """

    hidden: torch.Tensor
    cell: torch.Tensor | None
    feed: torch.Tensor
    src_memory: torch.Tensor
    src_keys: torch.Tensor
    src_bias: torch.Tensor
    src_mask: torch.Tensor
    attn: torch.Tensor | None = None
    group: int = 1
    src_lens: tuple[int, ...] | None = None

    def _per_row(self, t: torch.Tensor) -> torch.Tensor:
        """``(B, ...)`` per-source tensor as ``(N, ...)`` per row."""
        return t if self.group == 1 else t.repeat_interleave(self.group, dim=0)

    @property
    def memory(self) -> torch.Tensor:
        """``(N, S, 2H)`` encoder outputs per row."""
        return self._per_row(self.src_memory)

    @property
    def keys(self) -> torch.Tensor:
        """``(N, S, K)`` attention keys per row."""
        return self._per_row(self.src_keys)

    @property
    def bias(self) -> torch.Tensor:
        """``(N, S)`` additive attention mask per row."""
        return self._per_row(self.src_bias)

    @property
    def mask(self) -> torch.Tensor:
        """``(N, S)`` bool source mask per row."""
        return self._per_row(self.src_mask)

    def index_select(self, index: torch.Tensor) -> DecoderState:
        """Select, reorder or repeat rows.

        Per-row tensors are indexed directly. The per-source tensors are indexed by source row
        only, and only when the selection changes them: if the selected rows come in equal runs
        that each share one source row (beam expansion ``arange(B).repeat_interleave(K)``,
        reordering within runs, dropping whole runs) the new state keeps one source row per run;
        otherwise it falls back to one source row per row (``group = 1``).

        Args:
            index: ``(N',)`` long row indices into the current ``N`` rows.

        Returns:
            A new state with ``N'`` rows.
        """
        src = index // self.group if self.group > 1 else index  # (N',) source row of each row
        n = index.numel()
        values, counts = torch.unique_consecutive(src, return_counts=True)  # (B',), (B',)
        m = values.numel()
        if m > 0 and n % m == 0 and bool((counts == n // m).all()):
            group, sel = n // m, values
        else:
            group, sel = 1, src
        B = self.src_memory.shape[0]
        lens = self.src_lens
        if sel.numel() == B and bool((sel == torch.arange(B, device=sel.device)).all()):
            memory, keys, bias, mask = self.src_memory, self.src_keys, self.src_bias, self.src_mask
        else:
            memory, keys, bias, mask = (t.index_select(0, sel) for t in (
                self.src_memory, self.src_keys, self.src_bias, self.src_mask))
            if lens is not None:
                lens = tuple(lens[i] for i in sel.tolist())
        return DecoderState(
            hidden=self.hidden.index_select(1, index),
            cell=self.cell.index_select(1, index) if self.cell is not None else None,
            feed=self.feed.index_select(0, index),
            src_memory=memory,
            src_keys=keys,
            src_bias=bias,
            src_mask=mask,
            attn=self.attn.index_select(0, index) if self.attn is not None else None,
            group=group,
            src_lens=lens,
        )
