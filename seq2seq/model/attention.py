"""Masked attention over encoder memory: Bahdanau (additive) and Luong (dot, general).

Every attention splits its work into a part that depends only on the memory, done once per
sentence batch (:meth:`precompute_keys`), and a cheap per-step part (:meth:`forward`), so the
decoder never re-projects the memory inside its time loop. Padded source positions receive
exactly zero weight: their scores are replaced by ``-inf`` through an additive mask bias that is
also built once (:func:`mask_bias`). The softmax and the returned weights are float32 under any
autocast or bf16 weights, so alignment rows sum to 1 within float32 rounding; only the context
GEMM runs in the memory's dtype.

At inference the per-step part can also take the true source lengths. It then attends over
consecutive runs of source rows, each trimmed to its own longest source
(:func:`length_chunks`): with sentences sorted by length (as search sorts them) the padded
positions of a batch cost (almost) nothing, and Bahdanau's ``(rows, S, A)`` energy is built one
cache-sized chunk at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from seq2seq.config import AttentionType
from seq2seq.rnn.activation import tanh_

CHUNK_ELEMENTS = 1 << 20  # per-step intermediate elements per run (4 MiB fp32, to stay in cache)


class _MemoryGradSink(torch.autograd.Function):
    """Hands the memory the gradient of all steps' contexts in one GEMM.

    Its output is an empty token that every step's :class:`_StepContext` consumes, so autograd
    runs this backward only after all steps' backwards have stored their context gradients.
    """

    @staticmethod
    def forward(ctx, memory: torch.Tensor, acc: _ContextStore) -> torch.Tensor:
        ctx.acc = acc
        return memory.new_empty(0)

    @staticmethod
    def backward(ctx, _grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        acc: _ContextStore = ctx.acc
        memory = acc.memory
        zeros = memory.new_zeros(memory.shape[0], memory.shape[2])  # (N, M)
        grads = [acc.grads.get(t, zeros) for t in range(len(acc.weights))]
        W = torch.stack(acc.weights, dim=2)  # (N, S, T)
        G = torch.stack(grads, dim=1)  # (N, T, M)
        acc.weights, acc.grads = [], {}
        return torch.bmm(W.to(memory.dtype), G), None  # (N, S, M)


class _StepContext(torch.autograd.Function):
    """``context = weights @ memory`` whose memory gradient is deferred to the sink."""

    @staticmethod
    def forward(ctx, weights: torch.Tensor, token: torch.Tensor, acc: _ContextStore,
                t: int) -> torch.Tensor:
        ctx.acc, ctx.t, ctx.w_dtype = acc, t, weights.dtype
        w = weights.to(acc.memory.dtype).unsqueeze(1)  # (N, 1, S) explicit: autocast-proof
        return torch.bmm(w, acc.memory).squeeze(1)  # (N, M)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        acc: _ContextStore = ctx.acc
        grad = grad.to(acc.memory.dtype)
        acc.grads[ctx.t] = grad
        grad_w = torch.bmm(acc.memory, grad.unsqueeze(2)).squeeze(2)  # (N, S)
        return grad_w.to(ctx.w_dtype), grad.new_zeros(0), None, None


class _ContextStore:
    """What the deferred-gradient functions share (holds no graph references: no cycles)."""

    def __init__(self, memory: torch.Tensor) -> None:
        self.memory = memory.detach()  # (N, S, M)
        self.weights: list[torch.Tensor] = []  # T x (N, S)
        self.grads: dict[int, torch.Tensor] = {}  # t -> (N, M)


class DeferredContext:
    """Per-step attention contexts for a teacher-forced pass, with batched memory gradient.

    Autograd would otherwise build a full ``(N, S, M)`` memory gradient in every step (an
    outer product) and add them up; here each step only keeps its ``(N, M)`` context gradient
    and the memory gets ``W^T G`` for all steps in a single batched GEMM.

    Args:
        memory: ``(N, S, M)`` encoder outputs (requiring grad).
    """

    def __init__(self, memory: torch.Tensor) -> None:
        self.store = _ContextStore(memory)
        self.token = _MemoryGradSink.apply(memory, self.store)  # (0,)

    def __call__(self, weights: torch.Tensor) -> torch.Tensor:
        """Context of one step.

        Args:
            weights: ``(N, S)`` attention weights.

        Returns:
            ``(N, M)`` context.
        """
        t = len(self.store.weights)
        self.store.weights.append(weights.detach())
        return _StepContext.apply(weights, self.token, self.store, t)


def softmax32(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim in at least float32 (bf16 or fp16 scores are upcast).

    float32 and float64 scores take the plain kernel, so their results stay bit-identical to it.
    """
    if scores.dtype in (torch.bfloat16, torch.float16):
        scores = scores.float()
    return torch.softmax(scores, dim=-1)


def mask_bias(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Turn a boolean source mask into an additive score bias.

    Args:
        mask: ``(B, S)`` bool, True at real (non-padding) positions.
        dtype: dtype of the returned bias.

    Returns:
        ``(B, S)`` tensor, 0 at real positions and ``-inf`` at padding.
    """
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)  # (B, S)
    return bias.masked_fill_(~mask, float("-inf"))


class _AdditiveScore(torch.autograd.Function):
    """``v^T tanh(keys + q)`` with a hand-written backward.

    Autograd would compute ``d e = g v^T`` and ``d v = e^T g`` as rank-1 GEMMs, which BLAS runs
    poorly; here they are a broadcast multiply and a GEMV. ``q`` is ``(N, A)`` (one query per
    keys row) or ``(B, g, A)`` (``g`` queries per keys row: a whole teacher-forced target).
    """

    @staticmethod
    def forward(ctx, q: torch.Tensor, keys: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        A = keys.shape[2]
        if q.dim() == 3:
            e = tanh_(torch.add(keys[:, None], q[:, :, None]))  # (B, g, S, A)
        else:
            e = tanh_(torch.add(keys, q.unsqueeze(1)))  # (N, S, A)
        v_e = v.to(e.dtype)  # explicit casts: mv is not autocast on CPU, nor is any backward
        ctx.save_for_backward(e, v_e)
        ctx.dtypes = (q.dtype, keys.dtype, v.dtype)
        return torch.mv(e.view(-1, A), v_e).view(e.shape[:-1])  # (N, S) | (B, g, S)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e, v = ctx.saved_tensors
        q_dtype, k_dtype, v_dtype = ctx.dtypes
        A = e.shape[-1]
        g = grad.to(e.dtype).contiguous()  # (N, S) | (B, g, S)
        de = torch.ops.aten.tanh_backward(g.unsqueeze(-1) * v, e)  # (N, S, A) | (B, g, S, A)
        grad_v = torch.mv(e.view(-1, A).t(), g.view(-1))  # (A,)
        if e.dim() == 4:
            return de.sum(2).to(q_dtype), de.sum(1).to(k_dtype), grad_v.to(v_dtype)
        return de.sum(1).to(q_dtype), de.to(k_dtype), grad_v.to(v_dtype)


def length_chunks(lengths: Sequence[int], group: int,
                  width: int) -> list[tuple[int, int, int]] | None:
    """Split source rows into runs whose attention is computed trimmed to the run's longest source.

    A run holds as many consecutive source rows as keep its per-step intermediate (``group``
    queries x positions x ``width`` elements, at the batch's longest length) within
    :data:`CHUNK_ELEMENTS`.

    Args:
        lengths: true source length of each of the ``B`` source rows.
        group: query rows per source row.
        width: intermediate elements per (query, position) pair (Bahdanau: ``A``; Luong: 1).

    Returns:
        ``[(first_row, end_row, trimmed_length), ...]`` covering all rows in order, or None when
        one untrimmed run would cover the batch (nothing to gain).
    """
    B, S = len(lengths), max(lengths, default=0)
    rows = max(1, CHUNK_ELEMENTS // max(1, group * S * width))
    if B == 0 or (rows >= B and min(lengths) == S):
        return None
    rows = -(-B // -(-B // rows))  # same number of runs, sizes balanced
    return [(i, min(B, i + rows), max(max(lengths[i:i + rows]), 1)) for i in range(0, B, rows)]


class _Attention(nn.Module):
    """Common interface: ``precompute_keys(memory)`` once, then ``forward`` per step."""

    energy_width = 1  # per-step intermediate elements per (query, position), for chunking

    def precompute_keys(self, memory: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def project_query(self, query: torch.Tensor) -> torch.Tensor:
        """The query as :meth:`score_projected` takes it (identity unless overridden)."""
        return query

    def score_projected(self, q: torch.Tensor, keys: torch.Tensor,
                        group: int = 1) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def scores(self, query: torch.Tensor, keys: torch.Tensor, group: int = 1) -> torch.Tensor:
        """Unmasked scores.

        Args:
            query: ``(N, Hq)``.
            keys: ``(N / group, S, K)``; query rows ``i * group ... (i + 1) * group - 1`` use
                keys row ``i``.
            group: consecutive query rows per keys row.

        Returns:
            ``(N, S)`` scores.
        """
        return self.score_projected(self.project_query(query), keys, group)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        memory: torch.Tensor,
        bias: torch.Tensor,
        context_fn: DeferredContext | None = None,
        group: int = 1,
        lengths: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend with one query per row.

        With ``group = g > 1`` the ``N = B * g`` queries come in ``B`` runs of ``g`` consecutive
        rows that share one source row of ``keys``/``memory``/``bias`` (beam hypotheses of one
        sentence), so the per-source tensors are never copied per hypothesis. The math is the
        same as with the source rows repeated ``g`` times.

        With ``lengths`` (and no autograd) the source rows are attended in runs trimmed to
        their longest source (:func:`length_chunks`); positions beyond a row's length get zero
        weight either way, so only floating-point rounding differs.

        Args:
            query: ``(N, Hq)`` decoder state.
            keys: ``(B, S, K)`` output of :meth:`precompute_keys`, ``B = N / group``.
            memory: ``(B, S, M)`` encoder outputs (the values).
            bias: ``(B, S)`` additive mask from :func:`mask_bias`.
            context_fn: optional :class:`DeferredContext` over ``memory`` (training passes;
                ``group`` must be 1).
            group: consecutive query rows per source row.
            lengths: optional true length of each of the ``B`` source rows (inference only).

        Returns:
            ``(context (N, M), weights (N, S) float32)``; weights are 0 at padding and rows sum
            to 1.
        """
        if lengths is not None and context_fn is None and not torch.is_grad_enabled():
            chunks = length_chunks(lengths, group, self.energy_width)
            if chunks is not None:
                return self._chunked(query, keys, memory, bias, group, chunks)
        if group == 1:
            scores = self.scores(query, keys) + bias  # (N, S)
            weights = softmax32(scores)  # (N, S)
            if context_fn is not None:
                return context_fn(weights), weights  # (N, M), (N, S)
            w = weights.to(memory.dtype).unsqueeze(1)  # (N, 1, S)
            context = torch.bmm(w, memory).squeeze(1)  # (N, M)
            return context, weights
        B, S = bias.shape
        scores = self.scores(query, keys, group).view(B, group, S) + bias[:, None]  # (B, g, S)
        weights = softmax32(scores)  # (B, g, S)
        context = torch.bmm(weights.to(memory.dtype), memory)  # (B, g, M)
        return context.view(B * group, -1), weights.view(B * group, S)  # (N, M), (N, S)

    def _chunked(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor,
                 bias: torch.Tensor, group: int,
                 chunks: list[tuple[int, int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` one run of source rows at a time, each trimmed to its length.

        Args:
            query, keys, memory, bias, group: as in :meth:`forward`.
            chunks: output of :func:`length_chunks`.

        Returns:
            ``(context (N, M), weights (N, S))``, weights zero beyond each run's length.
        """
        q = self.project_query(query)  # (N, Hq')
        N, S = query.shape[0], bias.shape[1]
        context = memory.new_empty(N, memory.shape[2])  # (N, M)
        weights = None
        for i, j, w in chunks:
            b, r, s = j - i, slice(i * group, j * group), slice(0, w)
            scores = self.score_projected(q[r], keys[i:j, s], group).view(b, group, w)  # (b, g, w)
            run = softmax32(scores + bias[i:j, None, s])  # (b, g, w)
            torch.bmm(run.to(memory.dtype), memory[i:j, s], out=context[r].view(b, group, -1))
            if weights is None:
                weights = run.new_zeros(N, S)  # (N, S)
            weights[r, s] = run.view(b * group, w)
        return context, weights


class BahdanauAttention(_Attention):
    """Additive attention ``score(q, m) = v^T tanh(W_q q + W_k m)``.

    Args:
        query_size: size of the decoder state ``Hq``.
        key_size: size of an encoder output ``M`` (``2H`` for a bidirectional encoder).
        attn_size: size of the hidden scoring layer ``A``.
    """

    def __init__(self, query_size: int, key_size: int, attn_size: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(key_size, attn_size, bias=False)
        self.query_proj = nn.Linear(query_size, attn_size, bias=True)
        self.v = nn.Linear(attn_size, 1, bias=False)

    def precompute_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """Project the memory once.

        Args:
            memory: ``(B, S, M)``.

        Returns:
            ``(B, S, A)`` projected keys ``W_k m``.
        """
        return self.key_proj(memory)  # (B, S, A)

    @property
    def energy_width(self) -> int:
        """Bahdanau's per-step intermediate is the ``(N, S, A)`` energy."""
        return self.query_proj.out_features

    def project_query(self, query: torch.Tensor) -> torch.Tensor:
        """``W_q q + b``: ``(N, Hq) -> (N, A)``."""
        return self.query_proj(query)  # (N, A)

    def score_projected(self, q: torch.Tensor, keys: torch.Tensor,
                        group: int = 1) -> torch.Tensor:
        """Unmasked scores from a projected query.

        Args:
            q: ``(N, A)`` output of :meth:`project_query`.
            keys: ``(N / group, S, A)``; query rows ``i * group ... (i + 1) * group - 1`` use
                keys row ``i``.
            group: consecutive query rows per keys row.

        Returns:
            ``(N, S)`` scores.
        """
        if group == 1:
            return _AdditiveScore.apply(q, keys, self.v.weight[0])  # (N, S)
        B, S, A = keys.shape
        scores = _AdditiveScore.apply(q.view(B, group, A), keys, self.v.weight[0])  # (B, g, S)
        return scores.view(B * group, S)  # (N, S)


class LuongAttention(_Attention):
    """Multiplicative attention ``score(q, m) = q^T W m`` (general) or ``q^T m`` (dot).

    For ``dot`` the keys are projected to the query size by a bias-free linear map only when the
    sizes differ (a bidirectional encoder gives ``2H`` keys for an ``H`` query); otherwise the
    memory itself is the key.

    Args:
        query_size: size of the decoder state ``Hq``.
        key_size: size of an encoder output ``M``.
        method: ``"dot"`` or ``"general"``.
    """

    def __init__(self, query_size: int, key_size: int, method: str = "general") -> None:
        super().__init__()
        if method not in ("dot", "general"):
            raise ValueError(f"LuongAttention method must be 'dot' or 'general', got {method!r}")
        self.method = method
        need_proj = method == "general" or key_size != query_size
        self.key_proj = nn.Linear(key_size, query_size, bias=False) if need_proj else None

    def precompute_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """Project the memory once (``W m``), or return it unchanged for size-matched dot.

        Args:
            memory: ``(B, S, M)``.

        Returns:
            ``(B, S, Hq)`` keys.
        """
        if self.key_proj is None:
            return memory
        return self.key_proj(memory)  # (B, S, Hq)

    def score_projected(self, q: torch.Tensor, keys: torch.Tensor,
                        group: int = 1) -> torch.Tensor:
        """Unmasked scores.

        Args:
            q: ``(N, Hq)`` queries.
            keys: ``(N / group, S, Hq)``; query rows ``i * group ... (i + 1) * group - 1`` use
                keys row ``i``.
            group: consecutive query rows per keys row.

        Returns:
            ``(N, S)`` scores.
        """
        if group == 1:
            return torch.bmm(keys, q.unsqueeze(2)).squeeze(2)  # (N, S)
        B, S, Hq = keys.shape
        per_source = q.view(B, group, Hq).transpose(1, 2)  # (B, Hq, g)
        return torch.bmm(keys, per_source).transpose(1, 2).reshape(B * group, S)  # (N, S)


def build_attention(kind: AttentionType, query_size: int, key_size: int) -> _Attention:
    """Make the attention named by ``ModelConfig.attention``.

    Args:
        kind: the :class:`~seq2seq.config.AttentionType`.
        query_size: decoder state size.
        key_size: encoder output size.

    Returns:
        The attention module.
    """
    kind = AttentionType(kind)
    if kind == AttentionType.bahdanau:
        return BahdanauAttention(query_size, key_size, query_size)
    return LuongAttention(query_size, key_size, "dot" if kind == AttentionType.luong_dot
                          else "general")
