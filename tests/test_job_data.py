"""Tests for seq2seq.training.job_data: a job's pairs, sentencepiece models and encoded datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq.config import DataConfig
from seq2seq.tokenizer import Tokenizer, train_tokenizers
from seq2seq.training.distributed import DistContext
from seq2seq.training.job_data import (
    encode_datasets,
    load_pairs,
    source_style,
    train_job_tokenizers,
)

SRC = ["das Haus ist klein", "der Hund", "ein sehr sehr sehr langer Satz hier", "gut"]
TGT = ["the house is small", "the dog", "a very very very long sentence here", ""]


def _files(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for split in ("train", "dev"):
        for side, lines in (("src", SRC), ("tgt", TGT)):
            p = tmp_path / f"{split}.{side}"
            p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            paths[f"{side}_{split}"] = str(p)
    return paths


def test_load_pairs_cuts_only_the_dev_set(tmp_path: Path) -> None:
    d = DataConfig(dev_max_sentences=2, **_files(tmp_path))
    train, dev = load_pairs(d)
    assert train == list(zip(SRC, TGT, strict=True))
    assert dev == [("das Haus ist klein", "the house is small"), ("der Hund", "the dog")]
    _, whole = load_pairs(DataConfig(dev_max_sentences=0, **_files(tmp_path)))
    assert len(whole) == 4


@pytest.mark.parametrize("joint", [False, True])
def test_job_tokenizers_are_trained_written_and_seeded(tiny_corpus: dict[str, Path],
                                                       tmp_path: Path, joint: bool) -> None:
    d = DataConfig(src_lang="de", tgt_lang="en", vocab_size=120, joint_vocab=joint,
                   **{k: str(v) for k, v in tiny_corpus.items()})
    pairs, _ = load_pairs(d)
    src, tgt = train_job_tokenizers(pairs, d, 5, tmp_path / "spm", DistContext())
    assert (src is tgt) == joint
    assert src.vocab_size == tgt.vocab_size == 120
    assert Tokenizer((tmp_path / "spm/de.model").read_bytes()) == src
    assert Tokenizer((tmp_path / "spm/en.model").read_bytes()) == tgt
    # the same models as sentencepiece training with the job's settings and seed
    ref = train_tokenizers([p[0] for p in pairs], [p[1] for p in pairs], 120, joint=joint,
                           seed=5, hard_vocab_limit=False)
    assert (src, tgt) == ref


def test_job_tokenizers_accept_a_smaller_vocabulary(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    pairs = list(zip(SRC, ["the house", "the dog", "a long one", "good"], strict=True))
    d = DataConfig(vocab_size=500)
    src, tgt = train_job_tokenizers(pairs, d, 0, tmp_path, DistContext())
    assert src.vocab_size < 500 and tgt.vocab_size < 500
    assert "fewer than data.vocab_size=500 (small corpus)" in caplog.text


def test_encode_datasets_filters_training_pairs_only() -> None:
    pairs = list(zip(SRC, TGT, strict=True))
    src_tok, tgt_tok = train_tokenizers(SRC * 5, TGT[:3] * 5, 30, hard_vocab_limit=False)
    limit = max(len(src_tok.encode(s)) for s in SRC[:2])
    assert len(src_tok.encode(SRC[2])) > limit  # pair 2 is too long, pair 3 has an empty target
    d = DataConfig(max_src_len=limit, src_train="train.de")
    train, dev = encode_datasets(pairs, pairs, src_tok, tgt_tok, d, seed=1)
    assert train.indices == [0, 1] and train.n_dropped == 2
    assert train[1] == (src_tok.encode("der Hund"), tgt_tok.encode("the dog"))
    assert dev.indices == [0, 1, 2]  # dev: no length limit, empty pairs dropped
    with pytest.raises(ValueError, match="no training pairs left after filtering train.de"):
        encode_datasets(pairs, pairs, src_tok, tgt_tok, DataConfig(max_src_len=1,
                                                                   src_train="train.de"), seed=1)


def test_encode_datasets_drops_final_punctuation_in_training_pairs_only(caplog) -> None:
    pairs = [("der Hund.", "the dog."), ("die Katze.", "the cat.")]
    src_tok, tgt_tok = train_tokenizers([s for s, _ in pairs] * 5, [t for _, t in pairs] * 5, 20,
                                        hard_vocab_limit=False)
    with caplog.at_level("INFO", logger="seq2seq.training.job_data"):
        train, dev = encode_datasets(pairs, pairs, src_tok, tgt_tok,
                                     DataConfig(drop_final_punct=1.0), seed=1)
    assert [train[i] for i in range(2)] == [(src_tok.encode("der Hund"), tgt_tok.encode("the dog")),
                                            (src_tok.encode("die Katze"), tgt_tok.encode("the cat"))]
    assert dev[0] == (src_tok.encode("der Hund."), tgt_tok.encode("the dog."))
    assert "2 without their final punctuation" in caplog.text


def test_source_style_is_what_the_bundles_keep_of_the_training_source() -> None:
    pairs = [("Und Gott sprach: Licht!", "x"), ("und es ward Licht.", "y"),
             ("Da sah Gott das Licht.", "z"), ("Gott ist Liebe", "w")]
    style = source_style(pairs)
    assert style == {"truecase": {"gott": "Gott", "licht": "Licht", "liebe": "Liebe"},
                     "final_mark": "."}  # 3 of 4 end in a mark, 2 of them in "."
    titles = source_style([("Hallo", "Hello"), ("Neue Welt", "New world")])
    assert titles == {"truecase": {"hallo": "Hallo", "welt": "Welt"}, "final_mark": None}


def _spm_file(path: Path, sentences: list[str], vocab: int, **ids: int) -> Path:
    """Train a real sentencepiece model with the given special ids and write it to ``path``."""
    import io

    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=buf,
                                   vocab_size=vocab, hard_vocab_limit=False, minloglevel=2, **ids)
    path.write_bytes(buf.getvalue())
    return path


OUR_IDS = dict(pad_id=0, unk_id=1, bos_id=2, eos_id=3)


def test_own_sentencepiece_models_are_used_for_their_side(tiny_corpus: dict[str, Path],
                                                          tmp_path: Path) -> None:
    d0 = DataConfig(src_lang="de", tgt_lang="en", **{k: str(v) for k, v in tiny_corpus.items()})
    pairs, _ = load_pairs(d0)
    own = _spm_file(tmp_path / "own.de.model", [p[0] for p in pairs], 90, **OUR_IDS)
    d = DataConfig(src_lang="de", tgt_lang="en", vocab_size=120, spm_src=str(own))
    src, tgt = train_job_tokenizers(pairs, d, 0, tmp_path / "spm", DistContext())
    assert src == Tokenizer(own.read_bytes()) and src.vocab_size == 90
    assert tgt.vocab_size == 120  # the target side without a model is trained
    assert (tmp_path / "spm/de.model").read_bytes() == own.read_bytes()
    # joint: the one model serves both sides
    j = DataConfig(src_lang="de", tgt_lang="en", joint_vocab=True, spm_src=str(own))
    src, tgt = train_job_tokenizers(pairs, j, 0, tmp_path / "spm2", DistContext())
    assert src is tgt and src.vocab_size == 90


def test_own_sentencepiece_model_with_other_special_ids_is_named(tiny_corpus: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    pairs = [(s, s) for s in SRC * 20]
    default_ids = _spm_file(tmp_path / "default.model", SRC * 20, 40)  # unk 0, bos 1, eos 2
    d = DataConfig(spm_tgt=str(default_ids))
    with pytest.raises(ValueError) as err:
        train_job_tokenizers(pairs, d, 0, tmp_path / "spm", DistContext())
    msg = str(err.value)
    assert msg.startswith(f"data.spm_tgt: {default_ids}: sentencepiece model has special ids "
                          "pad/unk/bos/eos=(-1, 0, 1, 2), expected (0, 1, 2, 3)")
    assert "--pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3" in msg
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="data.spm_src: .*junk.model is not a sentencepiece"):
        train_job_tokenizers(pairs, DataConfig(spm_src=str(tmp_path / "junk.model")), 0,
                             tmp_path / "spm", DistContext())
