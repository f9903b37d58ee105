"""Tests for seq2seq.checkpoint: bundle round trip, safe loading, atomic writes, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seq2seq import checkpoint as ckpt
from seq2seq.checkpoint import (
    FORMAT_VERSION,
    load_bundle,
    make_bundle,
    model_config_from_bundle,
    proto_to_tensor,
    save_bundle,
    tensor_to_proto,
    tokenizers_from_bundle,
)
from seq2seq.config import ModelConfig
from seq2seq.model import build_model
from seq2seq.model.seq2seq import Seq2Seq


def _random_bundle(tiny_bundle: Path, seed: int, **cfg_kw) -> tuple[dict, Seq2Seq]:
    """A fresh randomly initialised model wrapped in a bundle with the tiny tokenizers."""
    base = load_bundle(tiny_bundle)
    src_tok, tgt_tok = tokenizers_from_bundle(base)
    cfg = ModelConfig(**{**base["model_config"], **cfg_kw})
    torch.manual_seed(seed)
    model = Seq2Seq(cfg, src_tok.vocab_size, tgt_tok.vocab_size).eval()
    meta = {"src_lang": "de", "tgt_lang": "en", "step": seed, "dev_bleu": None, "config": {}}
    return make_bundle(model, cfg, src_tok, tgt_tok, meta), model


def _inputs(vocab: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    src = torch.randint(4, vocab, (3, 6), generator=g)  # (B, S)
    src[2, 4:] = 0
    src_len = torch.tensor([6, 6, 4])  # (B,)
    tgt_in = torch.randint(4, vocab, (3, 5), generator=g)  # (B, T)
    return src, src_len, tgt_in


def test_proto_tensor_round_trip():
    data = bytes(range(256)) * 3
    t = proto_to_tensor(data)
    assert t.dtype == torch.uint8 and t.shape == (768,)
    assert tensor_to_proto(t) == data
    with pytest.raises(ValueError, match="uint8"):
        tensor_to_proto(torch.zeros(3, dtype=torch.int64))


def test_save_load_gives_identical_logits(tiny_bundle, tmp_path):
    bundle, model = _random_bundle(tiny_bundle, seed=3, rnn="lstm", attention="luong_general")
    path = tmp_path / "sub" / "m.pt"
    save_bundle(path, bundle)
    assert not (tmp_path / "sub" / "m.pt.tmp").exists()
    loaded = load_bundle(path)
    assert loaded["format_version"] == FORMAT_VERSION
    assert model_config_from_bundle(loaded) == model.cfg
    restored = build_model(loaded)
    assert not restored.training
    src, src_len, tgt_in = _inputs(min(model.src_vocab_size, model.tgt_vocab_size))
    with torch.no_grad():
        expected = model(src, src_len, tgt_in)  # (B, T, V)
        got = restored(src, src_len, tgt_in)  # (B, T, V)
    assert torch.equal(expected, got)
    assert loaded["meta"]["step"] == 3 and loaded["meta"]["created"]


def test_tokenizers_round_trip(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    src_tok, tgt_tok = tokenizers_from_bundle(bundle)
    assert src_tok.vocab_size == bundle["vocab"]["src_size"]
    assert tgt_tok.vocab_size == bundle["vocab"]["tgt_size"]
    assert bundle["vocab"]["joint"] is False
    assert tensor_to_proto(bundle["spm"]["src"]) == src_tok.to_bytes()
    assert tgt_tok.decode(tgt_tok.encode("and God said")) == "and God said"
    # a joint vocabulary is rebuilt as one shared tokenizer
    joint = make_bundle(build_model(bundle), model_config_from_bundle(bundle), src_tok, src_tok, {})
    assert joint["vocab"]["joint"] is True
    a, b = tokenizers_from_bundle(joint)
    assert a is b and a == src_tok


class _Evil:
    """Pickles into a call that would create a marker file if executed."""

    marker: str = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_arbitrary_python_object_is_not_loaded(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = str(marker)
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": evil}, path)
    with pytest.raises(ValueError, match=r"evil\.pt.*weights_only"):
        load_bundle(path)
    assert not marker.exists()


def test_save_refuses_non_plain_content(tiny_bundle, tmp_path):
    bundle = load_bundle(tiny_bundle)
    bundle["meta"]["config"] = {"model": ModelConfig()}  # a dataclass, not a dict
    with pytest.raises(TypeError, match=r"\['meta'\]\['config'\]\['model'\].*ModelConfig"):
        save_bundle(tmp_path / "x.pt", bundle)
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "x.pt.tmp").exists()


def test_crash_mid_write_keeps_old_file(tiny_bundle, tmp_path, monkeypatch):
    first, _ = _random_bundle(tiny_bundle, seed=1)
    second, _ = _random_bundle(tiny_bundle, seed=2)
    path = tmp_path / "last.pt"
    save_bundle(path, first)
    before = path.read_bytes()

    def crashing_save(obj, f):
        f.write(b"PK\x03\x04 partial bundle bytes")
        f.flush()
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt.torch, "save", crashing_save)
    with pytest.raises(OSError, match="simulated"):
        save_bundle(path, second)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert not (tmp_path / "last.pt.tmp").exists()
    assert load_bundle(path)["meta"]["step"] == 1
    # and a successful save replaces it
    save_bundle(path, second)
    assert load_bundle(path)["meta"]["step"] == 2


def test_truncated_file_is_a_clear_error(tiny_bundle, tmp_path):
    data = tiny_bundle.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.pt is truncated or not a torch checkpoint"):
        load_bundle(path)


def test_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match=r"notes\.pt"):
        load_bundle(path)


def test_plain_state_dict_is_not_a_bundle(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match=r"sd\.pt is not a seq2seq bundle"):
        load_bundle(path)


def test_newer_format_version_is_refused(tiny_bundle, tmp_path):
    bundle = load_bundle(tiny_bundle)
    bundle["format_version"] = FORMAT_VERSION + 1
    path = tmp_path / "future.pt"
    torch.save(bundle, path)
    with pytest.raises(ValueError, match=rf"future\.pt has format_version {FORMAT_VERSION + 1}, newer"):
        load_bundle(path)


def test_missing_keys_are_named(tiny_bundle, tmp_path):
    bundle = load_bundle(tiny_bundle)
    del bundle["spm"], bundle["vocab"]
    path = tmp_path / "partial.pt"
    torch.save(bundle, path)
    with pytest.raises(ValueError, match=r"partial\.pt is missing required keys \['vocab', 'spm'\]"):
        load_bundle(path)
    with pytest.raises(ValueError, match="missing required keys"):
        save_bundle(path, bundle)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_bundle(tmp_path / "nope.pt")


def test_weights_not_matching_config_are_a_clear_error(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    bundle["model_config"]["hidden_size"] = 48
    with pytest.raises(ValueError, match="do not match its model_config"):
        build_model(bundle)
    bundle["model_config"]["no_such_option"] = 1
    with pytest.raises(ValueError, match="no_such_option"):
        model_config_from_bundle(bundle)
