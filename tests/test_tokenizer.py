"""Tests for seq2seq.tokenizer: real sentencepiece models trained on the tiny Bible fixture."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, train_tokenizers

FIXTURES = Path(__file__).parent / "fixtures"


def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def de() -> list[str]:
    return _lines("tiny.de")


@pytest.fixture(scope="module")
def en() -> list[str]:
    return _lines("tiny.en")


@pytest.fixture(scope="module")
def tok_de(de: list[str]) -> Tokenizer:
    return Tokenizer.train(de, vocab_size=300, seed=0)


def test_special_ids(tok_de: Tokenizer) -> None:
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert [tok_de.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert tok_de.vocab_size == 300
    ids = [i for ids in tok_de.encode_batch(_lines("tiny.de")) for i in ids]
    assert min(ids) >= 4  # no specials (and no UNK: character_coverage=1.0) in training text


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_round_trip(de: list[str], model_type: str) -> None:
    tok = Tokenizer.train(de, vocab_size=250, model_type=model_type)
    for text in de:
        assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode("Und Gott sprach: Es werde Licht!")) == "Und Gott sprach: Es werde Licht!"


def test_decode_ignores_pad_bos_eos(tok_de: Tokenizer) -> None:
    ids = tok_de.encode("Und Gott sprach.")
    assert tok_de.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == "Und Gott sprach."


def test_unknown_character_maps_to_unk(tok_de: Tokenizer) -> None:
    ids = tok_de.encode("Gott ☃")
    assert ids[-1] == UNK_ID
    assert tok_de.decode(ids) == "Gott  ⁇ "  # sentencepiece renders UNK as " ⁇ "


def test_encode_batch_matches_encode_and_pieces(tok_de: Tokenizer, de: list[str]) -> None:
    assert tok_de.encode_batch(de[:20]) == [tok_de.encode(s) for s in de[:20]]
    pieces = tok_de.pieces(de[0])
    assert "".join(pieces).replace("▁", " ").strip() == de[0]
    assert [tok_de.piece_to_id(p) for p in pieces] == tok_de.encode(de[0])


def test_serialization_round_trip(tok_de: Tokenizer, de: list[str]) -> None:
    again = Tokenizer(tok_de.to_bytes())
    assert again == tok_de
    assert again.encode_batch(de) == tok_de.encode_batch(de)
    unpickled = pickle.loads(pickle.dumps(tok_de))
    assert unpickled.encode_batch(de) == tok_de.encode_batch(de)


def test_training_is_deterministic(de: list[str], tok_de: Tokenizer) -> None:
    assert Tokenizer.train(de, vocab_size=300, seed=0).to_bytes() == tok_de.to_bytes()


def test_vocab_too_large_fails_clearly_or_shrinks(de: list[str]) -> None:
    with pytest.raises(ValueError, match=r"vocab_size=50000 does not fit .* <= \d+"):
        Tokenizer.train(de, vocab_size=50000)
    soft = Tokenizer.train(de, vocab_size=50000, hard_vocab_limit=False)
    assert 100 < soft.vocab_size < 50000


def test_bad_arguments(de: list[str]) -> None:
    with pytest.raises(ValueError, match="SpmModelType"):
        Tokenizer.train(de, vocab_size=100, model_type="wordpiece")
    with pytest.raises(ValueError, match="zero non-empty"):
        Tokenizer.train(["", "  "], vocab_size=100)


def test_train_tokenizers_joint_and_separate(de: list[str], en: list[str]) -> None:
    src, tgt = train_tokenizers(de, en, vocab_size=300, joint=True)
    assert src is tgt
    assert src.decode(src.encode(en[0])) == en[0] and src.decode(src.encode(de[0])) == de[0]
    src, tgt = train_tokenizers(de, en, vocab_size=300, model_type="bpe", joint=False)
    assert src is not tgt and src != tgt
    assert src.vocab_size == tgt.vocab_size == 300
    assert "▁Gott" in {src.id_to_piece(i) for i in range(src.vocab_size)}
    assert "▁God" in {tgt.id_to_piece(i) for i in range(tgt.vocab_size)}
