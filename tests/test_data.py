"""Tests for seq2seq.data: file reading, encoding/filtering, the token batch sampler, collate."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
import torch

from seq2seq.data import (
    Batch,
    ParallelDataset,
    TokenBatchSampler,
    collate,
    load_parallel,
    pad_sequences,
    read_lines,
)
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

FIXTURES = Path(__file__).parent / "fixtures"


def _random_sizes(n: int = 1000, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 60) for _ in range(n)]


# ----------------------------------------------------------------------------- files


def test_read_lines_plain_and_gzip(tmp_path: Path) -> None:
    text = "erste Zeile\n  zweite  \n\nvierte\r\n"
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    expected = ["erste Zeile", "  zweite  ", "", "vierte"]
    assert read_lines(tmp_path / "a.txt") == expected
    assert read_lines(tmp_path / "a.txt.gz") == expected


def test_load_parallel_pairs_and_length_mismatch(tmp_path: Path) -> None:
    (tmp_path / "x.de").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "x.en").write_text("A\nB\n", encoding="utf-8")
    (tmp_path / "y.en").write_text("A\nB\nC\n", encoding="utf-8")
    assert load_parallel(tmp_path / "x.de", tmp_path / "x.en") == [("a", "A"), ("b", "B")]
    with pytest.raises(ValueError, match=r"x\.de has 2 lines.*y\.en has 3 lines"):
        load_parallel(tmp_path / "x.de", tmp_path / "y.en")


def test_tiny_fixture_is_parallel() -> None:
    pairs = load_parallel(FIXTURES / "tiny.de", FIXTURES / "tiny.en")
    assert len(pairs) == 300
    assert pairs[0] == (
        "Im Anfang schuf Gott die Himmel und die Erde.",
        "In the beginning God created the heavens and the earth.",
    )
    assert all(s and t for s, t in pairs)


# ----------------------------------------------------------------------------- dataset


@pytest.fixture(scope="module")
def toks() -> tuple[Tokenizer, Tokenizer]:
    pairs = load_parallel(FIXTURES / "tiny.de", FIXTURES / "tiny.en")
    return (
        Tokenizer.train([s for s, _ in pairs], vocab_size=200),
        Tokenizer.train([t for _, t in pairs], vocab_size=200),
    )


def test_dataset_encodes_and_filters(toks: tuple[Tokenizer, Tokenizer]) -> None:
    src_tok, tgt_tok = toks
    pairs = [
        ("Und Gott sprach.", "God spoke."),  # kept
        ("", "empty source"),  # dropped: empty
        ("Und Gott sprach zu Noah und sprach zu Mose und sprach.", "Short."),  # dropped: long src
        ("Gott.", "God."),  # kept
    ]
    long_len = len(src_tok.encode(pairs[2][0]))
    ds = ParallelDataset.from_pairs(pairs, src_tok, tgt_tok, max_src_len=long_len - 1, max_tgt_len=50)
    assert len(ds) == 2 and ds.n_dropped == 2 and ds.indices == [0, 3]
    assert ds[0] == (src_tok.encode("Und Gott sprach."), tgt_tok.encode("God spoke."))
    assert ds.sizes == [max(len(ds.src[i]), len(ds.tgt[i]) + 1) for i in range(2)]
    # the limit is inclusive: a pair of exactly max_src_len subwords is kept
    ds2 = ParallelDataset.from_pairs(pairs, src_tok, tgt_tok, max_src_len=long_len)
    assert ds2.indices == [0, 2, 3]
    batch = ds.batch([1, 0])
    assert batch.src[0, : batch.src_len[0]].tolist() == ds.src[1]


# ----------------------------------------------------------------------------- collate


def test_collate_exact_values() -> None:
    batch = collate([([5, 6, 7], [8, 9]), ([10], [11, 12, 13, 14])])
    assert batch.src.tolist() == [[5, 6, 7], [10, PAD_ID, PAD_ID]]
    assert batch.src_len.tolist() == [3, 1]
    assert batch.tgt_in.tolist() == [[BOS_ID, 8, 9, PAD_ID, PAD_ID], [BOS_ID, 11, 12, 13, 14]]
    assert batch.tgt_out.tolist() == [[8, 9, EOS_ID, PAD_ID, PAD_ID], [11, 12, 13, 14, EOS_ID]]
    assert batch.ntokens == 3 + 5
    assert batch.ntokens == int((batch.tgt_out != PAD_ID).sum())
    assert all(t.dtype == torch.long for t in (batch.src, batch.src_len, batch.tgt_in, batch.tgt_out))
    assert len(batch) == 2


def test_batch_to_device_copies() -> None:
    batch = collate([([5], [6])])
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and moved.ntokens == 2
    assert torch.equal(moved.tgt_out, torch.tensor([[6, EOS_ID]]))


def test_pad_sequences_custom_pad() -> None:
    ids, lengths = pad_sequences([[1, 2], [], [3]], pad_id=-1)
    assert ids.tolist() == [[1, 2], [-1, -1], [3, -1]]
    assert lengths.tolist() == [2, 0, 1]


# ----------------------------------------------------------------------------- sampler


def test_batches_respect_max_tokens_and_cover_epoch_once() -> None:
    sizes = _random_sizes()
    sampler = TokenBatchSampler(sizes, max_tokens=300, seed=1)
    batches = list(sampler)
    for b in batches:
        assert len(b) * max(sizes[i] for i in b) <= 300
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(sizes)))
    # length bucketing keeps padding low: at least 85% of the padded slots are real tokens
    real = sum(sizes)
    padded = sum(len(b) * max(sizes[i] for i in b) for b in batches)
    assert real / padded > 0.85


def test_max_sentences_and_oversized_example() -> None:
    sizes = [5] * 20 + [500]
    batches = TokenBatchSampler(sizes, max_tokens=100, max_sentences=4, seed=0).epoch_batches(0)
    assert [20] in batches  # too long for max_tokens: a batch of its own
    assert all(len(b) <= 4 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(21))


def test_deterministic_per_seed_and_epoch() -> None:
    sizes = _random_sizes()
    a = TokenBatchSampler(sizes, max_tokens=300, seed=7)
    b = TokenBatchSampler(sizes, max_tokens=300, seed=7)
    assert a.epoch_batches(0) == b.epoch_batches(0)
    assert a.epoch_batches(3) == b.epoch_batches(3)
    assert a.epoch_batches(0) != a.epoch_batches(1)
    assert a.epoch_batches(0) != TokenBatchSampler(sizes, max_tokens=300, seed=8).epoch_batches(0)


def test_iteration_rolls_over_epochs() -> None:
    sampler = TokenBatchSampler(_random_sizes(), max_tokens=300, seed=3)
    first = list(sampler)
    assert first == sampler.epoch_batches(0) and len(first) == len(sampler.epoch_batches(0))
    assert sampler.state_dict() == {"epoch": 1, "batches_done": 0}
    assert list(sampler) == sampler.epoch_batches(1)
    sampler.set_epoch(5)
    assert sampler.state_dict() == {"epoch": 5, "batches_done": 0}
    assert next(iter(sampler)) == sampler.epoch_batches(5)[0]
    sampler.set_epoch(5)  # same epoch: keeps the position
    assert sampler.state_dict() == {"epoch": 5, "batches_done": 1}


def test_resume_gives_exactly_the_remaining_batches() -> None:
    sizes = _random_sizes()
    sampler = TokenBatchSampler(sizes, max_tokens=300, seed=11)
    sampler.set_epoch(2)
    it = iter(sampler)
    seen = [next(it) for _ in range(5)]
    state = sampler.state_dict()
    assert state == {"epoch": 2, "batches_done": 5}
    resumed = TokenBatchSampler(sizes, max_tokens=300, seed=11)
    resumed.load_state_dict(state)
    assert resumed.remaining() == len(resumed.epoch_batches(2)) - 5
    rest = list(resumed)
    assert seen + rest == resumed.epoch_batches(2)
    assert resumed.state_dict() == {"epoch": 3, "batches_done": 0}


def test_shards_are_disjoint_and_match_gradient_accumulation() -> None:
    sizes = _random_sizes(997)
    full = TokenBatchSampler(sizes, max_tokens=250, seed=5)
    batches = full.epoch_batches(0)
    world = 3
    assert len(batches) % world != 0  # the truncation below is exercised
    truncated = batches[: len(batches) - len(batches) % world]
    shards = [list(full.shard(r, world)) for r in range(world)]
    assert all(len(s) == len(truncated) // world for s in shards)
    assert [b for s in shards for b in s] != truncated  # interleaved, not concatenated
    assert sorted(map(tuple, (b for s in shards for b in s))) == sorted(map(tuple, truncated))
    seen = [i for s in shards for b in s for i in b]
    assert len(seen) == len(set(seen))  # disjoint
    # update k: ranks 0..N-1 take batch k of their shard == N consecutive batches of one process
    for k in range(len(shards[0])):
        assert [shards[r][k] for r in range(world)] == truncated[k * world : (k + 1) * world]


def test_sharded_resume_and_world_size_change() -> None:
    sizes = _random_sizes(997)
    shard = TokenBatchSampler(sizes, max_tokens=250, seed=5).shard(1, 2)
    it = iter(shard)
    first = [next(it) for _ in range(3)]
    state = shard.state_dict()
    assert state == {"epoch": 0, "batches_done": 6}  # counted in the full epoch list
    full_list = shard.epoch_batches(0)
    assert first == [full_list[1], full_list[3], full_list[5]]
    # resume on one process: continues at batch 6 of the full list
    single = TokenBatchSampler(sizes, max_tokens=250, seed=5)
    single.load_state_dict(state)
    assert next(iter(single)) == full_list[6]
    # resume with 4 ranks: 6 is rounded up to 8
    four = TokenBatchSampler(sizes, max_tokens=250, seed=5).shard(2, 4)
    four.load_state_dict(state)
    assert next(iter(four)) == full_list[8 + 2]
    with pytest.raises(ValueError, match="rank"):
        single.shard(2, 2)


def test_no_shuffle_sorts_by_size() -> None:
    sizes = _random_sizes(200)
    batches = TokenBatchSampler(sizes, max_tokens=200, shuffle=False).epoch_batches(0)
    order = [i for b in batches for i in b]
    assert [sizes[i] for i in order] == sorted(sizes)
    assert batches == TokenBatchSampler(sizes, max_tokens=200, shuffle=False).epoch_batches(4)
