"""Tests for seq2seq.inference.translator on the real tiny bundle."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from seq2seq.checkpoint import load_bundle
from seq2seq.config import SearchConfig
from seq2seq.data import pad_sequences, read_lines
from seq2seq.inference.translator import Translator
from seq2seq.search import search

GREEDY = SearchConfig(beam_size=1, max_len_a=1.0, max_len_b=5)
BEAM = SearchConfig(beam_size=3, n_best=3, max_len_a=1.0, max_len_b=5)


@pytest.fixture(scope="module")
def sentences(tiny_corpus) -> list[str]:
    return read_lines(tiny_corpus["src_train"])[:10]


def test_matches_direct_search_in_input_order(translator, sentences):
    """Sorting into batches and back gives exactly what searching each sentence alone gives."""
    cfg = replace(BEAM, batch_size=4)
    out = translator.translate(sentences, cfg)
    assert len(out) == len(sentences)
    for text, tr in zip(sentences, out, strict=True):
        src, src_len = pad_sequences([translator.src_tok.encode(text)])  # (1, S), (1,)
        hyps = search(translator.model, src, src_len, cfg)[0]
        assert tr.tokens == hyps[0].tokens
        assert tr.text == translator.tgt_tok.decode(hyps[0].tokens)
        assert tr.score == pytest.approx(hyps[0].score, abs=1e-5)
        assert [t for t, _ in tr.n_best] == [translator.tgt_tok.decode(h.tokens) for h in hyps]
        assert len(tr.n_best) == 3
        assert [s for _, s in tr.n_best] == sorted((s for _, s in tr.n_best), reverse=True)
        assert tr.alignment is None
        assert tr.src_pieces == translator.src_tok.pieces(text)
        assert tr.tgt_pieces[-1] == "</s>" and len(tr.tgt_pieces) == len(tr.tokens) + 1


def test_batch_size_does_not_change_results(translator, sentences):
    a = translator.translate(sentences, replace(GREEDY, batch_size=64))
    b = translator.translate(sentences, replace(GREEDY, batch_size=3))
    assert [t.tokens for t in a] == [t.tokens for t in b]
    assert [t.score for t in a] == pytest.approx([t.score for t in b], abs=1e-5)


@pytest.fixture(scope="module")
def memorized(tmp_path_factory) -> tuple[Translator, list[tuple[str, str]]]:
    """A tiny model trained on six pairs until it has learnt them by heart (100 updates; on any
    CPU it reproduces every reference exactly), and those pairs."""
    from conftest import FIXTURES, build_tiny_bundle

    from seq2seq.data import load_parallel

    pairs = load_parallel(FIXTURES / "tiny.de", FIXTURES / "tiny.en")[:6]
    d = tmp_path_factory.mktemp("six")
    (d / "six.de").write_text("".join(f"{s}\n" for s, _ in pairs), encoding="utf-8")
    (d / "six.en").write_text("".join(f"{t}\n" for _, t in pairs), encoding="utf-8")
    bundle = build_tiny_bundle({"src_train": d / "six.de", "tgt_train": d / "six.en"}, steps=100)
    return Translator.from_bundle(bundle), pairs


def test_a_model_that_learnt_its_pairs_translates_them_exactly(memorized):
    """Greedy and beam search, in one batch and one by one, give the learnt references."""
    tr, pairs = memorized
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    assert references[0] == "In the beginning God created the heavens and the earth."
    for cfg in (SearchConfig(beam_size=1), SearchConfig(beam_size=3), replace(BEAM, batch_size=2,
                                                                             max_len_b=20)):
        assert [t.text for t in tr.translate(sources, cfg)] == references
    assert [tr.translate([s], SearchConfig())[0].text for s in sources] == references


def test_empty_inputs_skip_the_model(translator, sentences, monkeypatch):
    calls = []
    real = translator.model.encode
    monkeypatch.setattr(translator.model, "encode", lambda *a: calls.append(a) or real(*a))
    out = translator.translate(["", "   \t", sentences[0], ""], GREEDY)
    assert [t.text for t in out[:2]] == ["", ""] and out[3].text == ""
    assert out[0].tokens == [] and out[0].n_best == [("", 0.0)] and out[0].src_pieces == []
    assert out[2].text == translator.translate([sentences[0]], GREEDY)[0].text
    assert len(calls) == 2  # one batch in the mixed call, one in the check
    calls.clear()
    assert [t.text for t in translator.translate(["", " "], GREEDY)] == ["", ""]
    assert translator.translate([], GREEDY) == []
    assert calls == []


def test_text_without_subword_pieces_is_an_empty_translation(translator, sentences):
    """Zero-width characters (no pieces after normalisation) give "" with score 0, no crash."""
    zero = ["\u200b\u200b\u200b", "\u200c", "\ufeff"]
    assert all(translator.src_tok.encode(z) == [] for z in zero)
    out = translator.translate([zero[0], sentences[0], *zero[1:]], replace(GREEDY, n_best=1,
                                                                          return_alignment=True))
    assert [(t.text, t.score, t.tokens, t.alignment) for t in (out[0], *out[2:])] == [
        ("", 0.0, [], [])] * 3
    assert out[1].text == translator.translate([sentences[0]], GREEDY)[0].text != ""


def test_alignment_shape_and_rows(translator, sentences):
    out = translator.translate(sentences[:4], replace(GREEDY, return_alignment=True))
    for tr in out:
        a = torch.tensor(tr.alignment)  # (T_out + 1, S)
        assert a.shape == (len(tr.tokens) + 1, len(tr.src_pieces))
        assert torch.allclose(a.sum(1), torch.ones(a.shape[0]), atol=1e-4)
        assert (a >= 0).all()
    json.dumps([t.to_dict() for t in out])  # plain JSON for the server


def test_progress_counts_every_sentence(translator, sentences):
    seen = []
    translator.translate(["", *sentences[:5]], replace(GREEDY, batch_size=2), progress=seen.append)
    assert sum(seen) == 6 and seen[0] == 1


def test_info(translator, tiny_bundle):
    info = translator.info()
    bundle = load_bundle(tiny_bundle)
    assert info["src_lang"] == "de" and info["tgt_lang"] == "en"
    assert info["src_vocab_size"] == bundle["vocab"]["src_size"] == translator.src_tok.vocab_size
    assert info["tgt_vocab_size"] == translator.tgt_tok.vocab_size
    assert info["step"] == bundle["meta"]["step"] > 0
    assert info["dev_bleu"] == 1.5
    assert info["model_config"]["hidden_size"] == 32
    assert info["parameters"] == sum(p.numel() for p in translator.model.parameters())
    json.dumps(info)


def test_bad_batch_size(translator):
    with pytest.raises(ValueError, match="batch_size"):
        translator.translate(["x"], replace(GREEDY, batch_size=0))


def test_bf16_inference_converts_the_weights_once_and_keeps_search_in_fp32(tiny_bundle,
                                                                          sentences):
    """bf16 weights (converted at load), float32 log-probs; hypotheses differ from fp32 only
    where the weak tiny model has near-ties."""
    fp32 = Translator.from_checkpoint(tiny_bundle)
    bf16 = Translator.from_checkpoint(tiny_bundle, precision="bf16")
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in fp32.model.parameters()} == {torch.float32}
    assert (fp32.info()["precision"], bf16.info()["precision"]) == (
        "fp32 (precision=fp32)", "bf16 (precision=bf16)")
    src = torch.tensor([bf16.src_tok.encode(sentences[0])])
    with torch.inference_mode():
        logp, _ = bf16.model.step(torch.tensor([2]), bf16.model.init_state(
            bf16.model.encode(src, torch.tensor([src.shape[1]]))))
    assert logp.dtype == torch.float32
    torch.testing.assert_close(logp.exp().sum(), torch.tensor(1.0), atol=1e-3, rtol=0)
    cfg = SearchConfig(beam_size=3)
    a, b = fp32.translate(sentences[:20], cfg), bf16.translate(sentences[:20], cfg)
    import sacrebleu

    same = [(x, y) for x, y in zip(a, b, strict=True) if x.text == y.text]
    assert len(same) >= 8, len(same)
    assert max(abs(x.score - y.score) for x, y in same) < 0.1  # bf16 rounding, not a new model
    assert sacrebleu.corpus_chrf([y.text for y in b], [[x.text for x in a]]).score > 70


@pytest.mark.parametrize("beam_size", [1, 3])
def test_bf16_alignments_are_float32_distributions(tiny_bundle, sentences, beam_size):
    """bf16 weights (and bf16 autocast around a live model): the attention softmax and the
    returned weights stay float32, so every alignment row sums to 1 within 1e-5."""
    bf16 = Translator.from_checkpoint(tiny_bundle, precision="bf16")
    fp32 = Translator.from_checkpoint(tiny_bundle)
    live = Translator(fp32.model, fp32.src_tok, fp32.tgt_tok, amp_dtype=torch.bfloat16)
    cfg = SearchConfig(beam_size=beam_size, return_alignment=True, max_len_b=5)
    for tr in (bf16, live):
        for t in tr.translate(sentences[:4], cfg):
            rows = torch.tensor(t.alignment, dtype=torch.float64)  # (T+1, S)
            assert rows.shape == (len(t.tokens) + 1, len(t.src_pieces))
            torch.testing.assert_close(rows.sum(1), torch.ones(len(rows), dtype=torch.float64),
                                       atol=1e-5, rtol=0)


def test_auto_precision_follows_the_detection_not_the_machine(tiny_bundle, monkeypatch):
    """``precision=auto`` is bf16 exactly where oneDNN reports native bf16; the default is fp32
    whatever the CPU."""
    from seq2seq import runtime

    for native, dtype, reason in ((True, torch.bfloat16, "bf16 (auto: this CPU has native"),
                                  (False, torch.float32, "fp32 (auto: this CPU has no native")):
        monkeypatch.setattr(runtime, "native_bf16", lambda device, n=native: n)
        auto = Translator.from_checkpoint(tiny_bundle, precision="auto")
        assert {p.dtype for p in auto.model.parameters()} == {dtype}
        assert auto.info()["precision"].startswith(reason)
        default = Translator.from_checkpoint(tiny_bundle)
        assert {p.dtype for p in default.model.parameters()} == {torch.float32}
        assert default.info()["precision"] == "fp32 (precision=fp32)"


def test_overlong_inputs_are_cut_at_max_input_length(translator, sentences, caplog):
    long = " ".join([sentences[0]] * 30)
    ids = translator.src_tok.encode(long)
    assert translator.max_input_length == 200  # twice the bundle's data.max_src_len (100)
    translator.max_input_length = 12
    try:
        with caplog.at_level("WARNING", logger="seq2seq.inference.translator"):
            out = translator.translate(["Und Gott sprach.", long], GREEDY, first_index=7)
    finally:
        translator.max_input_length = 200
    assert (out[0].truncated_from, out[1].truncated_from) == (None, len(ids))
    assert len(out[1].src_pieces) == 12
    assert f"input 8 has {len(ids)} subword pieces; translating its first 12" in caplog.text
    src, src_len = pad_sequences([ids[:12]])
    assert out[1].tokens == search(translator.model, src, src_len, GREEDY)[0][0].tokens


def test_token_batches_match_sentence_batches_and_respect_the_budget(translator, sentences):
    lengths = [len(x) for x in translator.encode(sentences)]
    cfg = replace(GREEDY, batch_tokens=3 * max(lengths))
    chunks = list(Translator.batches(lengths, range(len(lengths)), cfg))
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    assert all(lengths[c[0]] * len(c) <= cfg.batch_tokens for c in chunks)
    assert all(len(c) == 3 for c in chunks[:-1])  # longest first: the longest fills the budget
    tiny = list(Translator.batches(lengths, range(len(lengths)), replace(GREEDY, batch_tokens=1)))
    assert [len(c) for c in tiny] == [1] * len(lengths)  # one sentence at least
    a = translator.translate(sentences, cfg)
    b = translator.translate(sentences, GREEDY)
    assert [t.tokens for t in a] == [t.tokens for t in b]


def test_prefixes_start_each_translation(translator, sentences):
    prefixes = ["And God", None, "", "Behold"] + [None] * (len(sentences) - 4)
    cfg = replace(BEAM, return_scores=True)
    out = translator.translate(sentences, cfg, prefixes=prefixes)
    plain = translator.translate(sentences, cfg)
    for p, tr, pl in zip(prefixes, out, plain, strict=True):
        if p:
            assert tr.tokens[:len(translator.tgt_tok.encode(p))] == translator.tgt_tok.encode(p)
            assert tr.text.startswith(p)
        else:
            assert tr.tokens == pl.tokens
        assert sum(tr.token_scores) == pytest.approx(tr.log_prob, abs=1e-4)
        assert len(tr.token_scores) == len(tr.tgt_pieces)
    with pytest.raises(ValueError, match="1 prefixes for 10 texts"):
        translator.translate(sentences, cfg, prefixes=["x"])


def test_score_gives_back_the_search_log_prob(translator, sentences, one_thread):
    cfg = replace(GREEDY, return_scores=True)
    out = translator.translate(sentences, cfg)
    scored = translator.score(sentences, [t.text for t in out], cfg)
    for tr, sc in zip(out, scored, strict=True):
        if translator.tgt_tok.encode(tr.text) == tr.tokens:  # text round-trips to the pieces
            assert sc.log_prob == tr.log_prob and sc.score == tr.score
            assert sc.token_scores == tr.token_scores
    # a stutter scores far below the model's own output; an empty one is just its EOS
    worse = translator.score([sentences[0]], ["the the the the"], cfg)[0]
    assert worse.score < scored[0].score - 5
    empty = translator.score([sentences[0]], [""], cfg)[0]
    assert empty.tokens == [] and len(empty.token_scores) == 1
    assert empty.log_prob == pytest.approx(empty.token_scores[0])
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        translator.score(sentences[:2], ["x"])
    with pytest.raises(ValueError, match="source 2 has no subword pieces"):
        translator.score(["Amen.", "\u200b"], ["Amen.", "x"])


def test_sampling_through_the_translator(translator, sentences):
    cfg = SearchConfig(sampling=True, n_best=3, seed=1, max_len_a=1.0, max_len_b=5)
    a = translator.translate(sentences, cfg)
    b = translator.translate(list(reversed(sentences)), replace(cfg, batch_size=2))
    # seeded and batch-invariant: the same samples (scores up to float32 noise)
    assert [[x for x, _ in t.n_best] for t in a] == [[x for x, _ in t.n_best]
                                                     for t in reversed(b)]
    assert [s for t in a for _, s in t.n_best] == pytest.approx(
        [s for t in reversed(b) for _, s in t.n_best], abs=1e-4)
    assert all(len(t.n_best) == 3 for t in a)
    assert any(len({x for x, _ in t.n_best}) > 1 for t in a)  # samples differ


GLOSSARY = {"Gott": "the Almighty", "Erde": "the world", "Abend": "dusk"}


@pytest.mark.parametrize("beam", [1, 3])
def test_a_glossary_term_comes_out_and_term_free_sentences_do_not_change(translator, sentences,
                                                                         beam, one_thread):
    cfg = SearchConfig(beam_size=beam, max_len_a=1.5, max_len_b=8)
    plain = translator.translate(sentences, cfg)
    out = translator.translate(sentences, cfg, glossary=GLOSSARY)
    with_terms = 0
    for text, p, g in zip(sentences, plain, out, strict=True):
        wanted = [t for s, t in GLOSSARY.items() if s in text.split() or f"{s}." in text]
        if g.constraints is None:
            assert not wanted and g.text == p.text and g.tokens == p.tokens
            continue
        with_terms += 1
        assert [c.target for c in g.constraints] == sorted(
            wanted, key=lambda t: text.index(next(s for s, v in GLOSSARY.items() if v == t)))
        for c in g.constraints:
            assert c.met and c.target in g.text and c.reason == ""
    assert with_terms >= 3


def test_a_glossary_with_sampling_is_refused(translator, sentences):
    with pytest.raises(ValueError, match="not search.sampling=true"):
        translator.translate(sentences[:1], SearchConfig(sampling=True, beam_size=1),
                             glossary={"Gott": "God"})
