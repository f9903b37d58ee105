"""Token-bucketed batch sampling (resumable, shardable), padding and collation.

Typical use in a training loop::

    pairs = load_parallel(cfg.src_train, cfg.tgt_train)
    train = ParallelDataset.from_pairs(pairs, src_tok, tgt_tok, cfg.max_src_len, cfg.max_tgt_len)
    sampler = TokenBatchSampler(train.sizes, max_tokens=4000, seed=1234)
    sampler.load_state_dict(saved)            # on resume: {"epoch": e, "batches_done": k}
    while not done:
        epoch = sampler.epoch
        for indices in sampler:               # the rest of the current epoch
            batch = train.batch(indices).to(device)
            ...
            saved = sampler.state_dict()      # counts the batch just yielded
        # the loop ended: sampler.epoch == epoch + 1, batches_done == 0

(:func:`~seq2seq.data.corpus.load_parallel` reads the text pairs.) Iterate the sampler directly (or through a ``DataLoader`` with ``num_workers=0``): worker
prefetching would advance its position past the batches actually trained on.

Sizes and padding: the source tensor carries no BOS/EOS; the target is ``BOS + y`` (input) and
``y + EOS`` (output). A batch's padded size is ``n_sentences * max(max_src_len, max_tgt_len + 1)``
and the sampler keeps it ``<= max_tokens`` (a single pair longer than ``max_tokens`` forms a batch
of its own).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer


@dataclass
class Batch:
    """A padded training batch (PAD = 0).

    Attributes:
        src: source ids without BOS/EOS, ``(B, S)`` long.
        src_len: real source lengths, ``(B,)`` long.
        tgt_in: decoder input ``BOS + y``, ``(B, T)`` long.
        tgt_out: decoder target ``y + EOS``, ``(B, T)`` long.
        ntokens: number of real target tokens, EOS included (``sum(len(y) + 1)``).
    """

    src: torch.Tensor
    src_len: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    ntokens: int

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Return a copy with every tensor on ``device``."""
        return Batch(
            src=self.src.to(device, non_blocking=non_blocking),
            src_len=self.src_len.to(device, non_blocking=non_blocking),
            tgt_in=self.tgt_in.to(device, non_blocking=non_blocking),
            tgt_out=self.tgt_out.to(device, non_blocking=non_blocking),
            ntokens=self.ntokens,
        )

    def pin_memory(self) -> Batch:
        """Return a copy in pinned host memory (for asynchronous copies to a GPU)."""
        return Batch(
            self.src.pin_memory(), self.src_len.pin_memory(), self.tgt_in.pin_memory(),
            self.tgt_out.pin_memory(), self.ntokens,
        )

    def __len__(self) -> int:
        return self.src.shape[0]


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int = PAD_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences into a tensor.

    Args:
        seqs: ``B`` id sequences.
        pad_id: padding id.

    Returns:
        ``(ids, lengths)``: ``(B, L)`` long with ``L = max(len)`` (at least 1) and ``(B,)`` long.
    """
    lens = [len(s) for s in seqs]
    width = max(lens, default=0) or 1
    rows = [[*s, *([pad_id] * (width - n))] for s, n in zip(seqs, lens, strict=True)]
    out = torch.tensor(rows, dtype=torch.long).reshape(len(seqs), width)  # (B, L)
    return out, torch.tensor(lens, dtype=torch.long)  # (B, L), (B,)


def collate(pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> Batch:
    """Pad ``(source ids, target ids)`` pairs (no special tokens) into a :class:`Batch`.

    Args:
        pairs: ``B`` pairs; the order is kept.

    Returns:
        The batch: ``src`` ``(B, S)``, ``src_len`` ``(B,)``, ``tgt_in``/``tgt_out`` ``(B, T)`` with
        ``T = max(len(y)) + 1``.
    """
    src, src_len = pad_sequences([p[0] for p in pairs])  # (B, S), (B,)
    tgt_in, _ = pad_sequences([[BOS_ID, *p[1]] for p in pairs])  # (B, T)
    tgt_out, _ = pad_sequences([[*p[1], EOS_ID] for p in pairs])  # (B, T)
    ntokens = sum(len(p[1]) + 1 for p in pairs)
    return Batch(src=src, src_len=src_len, tgt_in=tgt_in, tgt_out=tgt_out, ntokens=ntokens)


class ParallelDataset:
    """Encoded parallel corpus: ``dataset[i] == (src_ids, tgt_ids)`` without special tokens.

    Args:
        src: source id lists.
        tgt: target id lists (same number as ``src``).
        indices: original line number of each pair (defaults to ``0..n-1``).
    """

    def __init__(
        self,
        src: list[list[int]],
        tgt: list[list[int]],
        indices: list[int] | None = None,
    ) -> None:
        if len(src) != len(tgt):
            raise ValueError(f"src has {len(src)} items, tgt has {len(tgt)}")
        self.src = src
        self.tgt = tgt
        self.indices = list(range(len(src))) if indices is None else list(indices)
        self.n_dropped = 0

    @classmethod
    def from_pairs(
        cls,
        pairs: Sequence[tuple[str, str]],
        src_tok: Tokenizer,
        tgt_tok: Tokenizer,
        max_src_len: int = 0,
        max_tgt_len: int = 0,
        drop_empty: bool = True,
    ) -> ParallelDataset:
        """Encode text pairs and drop those that are empty or too long.

        Args:
            pairs: ``(source, target)`` sentences.
            src_tok: source tokenizer.
            tgt_tok: target tokenizer.
            max_src_len: drop pairs whose source has more subwords than this (0 = no limit).
            max_tgt_len: same for the target (special tokens are not counted).
            drop_empty: drop pairs with an empty side (after encoding).

        Returns:
            The dataset; ``indices`` maps each kept pair to its position in ``pairs`` and
            ``n_dropped`` counts the dropped ones.
        """
        src_ids = src_tok.encode_batch([p[0] for p in pairs])
        tgt_ids = tgt_tok.encode_batch([p[1] for p in pairs])
        keep_src, keep_tgt, keep_idx = [], [], []
        for i, (s, t) in enumerate(zip(src_ids, tgt_ids, strict=True)):
            if drop_empty and (not s or not t):
                continue
            if (max_src_len and len(s) > max_src_len) or (max_tgt_len and len(t) > max_tgt_len):
                continue
            keep_src.append(s)
            keep_tgt.append(t)
            keep_idx.append(i)
        ds = cls(keep_src, keep_tgt, keep_idx)
        ds.n_dropped = len(pairs) - len(keep_idx)
        return ds

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[list[int], list[int]]:
        return self.src[i], self.tgt[i]

    @property
    def sizes(self) -> list[int]:
        """Padded-size contribution of each pair: ``max(len(src), len(tgt) + 1)``."""
        return [max(len(s), len(t) + 1) for s, t in zip(self.src, self.tgt, strict=True)]

    def batch(self, indices: Sequence[int]) -> Batch:
        """Collate the pairs at ``indices`` (in that order)."""
        return collate([(self.src[i], self.tgt[i]) for i in indices])


class TokenBatchSampler:
    """Length-bucketed batches of at most ``max_tokens`` padded tokens; resumable and shardable.

    For epoch ``e`` the batch list is a pure function of ``(seed, e)`` and the sizes: the indices
    are shuffled, sorted by size within chunks of ``sort_chunk``, cut greedily into batches with
    ``n_sentences * max_size <= max_tokens`` (and ``n_sentences <= max_sentences`` when set), and
    the batch order is shuffled. Without ``shuffle`` the whole set is sorted by size and the
    batches come in that order (for evaluation).

    Position: ``batches_done`` counts batches of the *full* epoch list that have been handed out
    (in every shard together), so the state is the same for one process with gradient
    accumulation ``N`` and for ``N`` ranks that each take one batch per update, and a run can be
    resumed with another world size (a position that is not a multiple of the new world size is
    rounded up, skipping at most ``world_size - 1`` batches).

    Args:
        sizes: per-example padded size, e.g. ``ParallelDataset.sizes``.
        max_tokens: bound on ``n_sentences * max_size`` per batch.
        seed: base seed of the per-epoch shuffles.
        shuffle: shuffle (training) or sort (evaluation).
        max_sentences: bound on sentences per batch (0 = none).
        sort_chunk: shuffled indices are sorted by size within chunks of this many examples.
        epoch: starting epoch.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        max_tokens: int,
        seed: int = 0,
        shuffle: bool = True,
        max_sentences: int = 0,
        sort_chunk: int = 8192,
        epoch: int = 0,
    ) -> None:
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        self.sizes = list(sizes)
        self.max_tokens = max_tokens
        self.seed = seed
        self.shuffle = shuffle
        self.max_sentences = max_sentences
        self.sort_chunk = sort_chunk
        self.rank = 0
        self.world_size = 1
        self.epoch = epoch
        self.batches_done = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    # ----------------------------------------------------------------------------- batch lists
    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` (unsharded, untruncated), as lists of example indices."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        order = list(range(len(self.sizes)))
        if self.shuffle:
            rng = random.Random(f"{self.seed}:{epoch}")
            rng.shuffle(order)
            chunk = max(1, self.sort_chunk)
            order = [
                i
                for start in range(0, len(order), chunk)
                for i in sorted(order[start : start + chunk], key=self.sizes.__getitem__)
            ]
        else:
            order.sort(key=self.sizes.__getitem__)
        batches: list[list[int]] = []
        cur: list[int] = []
        cur_max = 0
        for i in order:
            new_max = max(cur_max, self.sizes[i])
            full = self.max_sentences and len(cur) >= self.max_sentences
            if cur and (full or (len(cur) + 1) * new_max > self.max_tokens):
                batches.append(cur)
                cur, new_max = [], self.sizes[i]
            cur.append(i)
            cur_max = new_max
        if cur:
            batches.append(cur)
        if self.shuffle:
            rng.shuffle(batches)
        self._cache = (epoch, batches)
        return batches

    def _shard_batches(self, epoch: int) -> list[list[int]]:
        """The truncated epoch list this sampler's shards split (a multiple of world_size)."""
        batches = self.epoch_batches(epoch)
        return batches[: len(batches) - len(batches) % self.world_size]

    def shard(self, rank: int, world_size: int) -> TokenBatchSampler:
        """A copy that yields ``batches[rank::world_size]`` of each epoch's truncated list.

        The list is truncated to a multiple of ``world_size`` so every rank gets the same number
        of batches. Epoch and position are copied from this sampler.
        """
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        other = TokenBatchSampler(
            self.sizes, self.max_tokens, self.seed, self.shuffle, self.max_sentences,
            self.sort_chunk, self.epoch,
        )
        other.rank, other.world_size = rank, world_size
        other.batches_done = self.batches_done
        return other

    # ----------------------------------------------------------------------------- iteration
    def set_epoch(self, epoch: int) -> None:
        """Move to the start of ``epoch``; a no-op when already in ``epoch`` (keeps the position)."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.batches_done = 0

    def __len__(self) -> int:
        """Batches this shard yields in a whole epoch (of the current epoch)."""
        return len(self._shard_batches(self.epoch)) // self.world_size

    def remaining(self) -> int:
        """Batches this shard will still yield in the current epoch."""
        total = len(self._shard_batches(self.epoch))
        pos = self._aligned(self.batches_done)
        return max(0, total - pos) // self.world_size

    def _aligned(self, pos: int) -> int:
        return math.ceil(pos / self.world_size) * self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        """Yield the rest of the current epoch, then move to the start of the next one.

        ``batches_done`` grows by ``world_size`` just before each batch is yielded, so a
        ``state_dict()`` taken while processing a batch already counts it.
        """
        batches = self._shard_batches(self.epoch)
        self.batches_done = self._aligned(self.batches_done)
        while self.batches_done < len(batches):
            b = batches[self.batches_done + self.rank]
            self.batches_done += self.world_size
            yield list(b)
        self.epoch += 1
        self.batches_done = 0

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, int]:
        """``{"epoch": int, "batches_done": int}`` (position in the full epoch list)."""
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore a position saved by :meth:`state_dict`."""
        self.epoch = int(state["epoch"])
        self.batches_done = int(state["batches_done"])
