"""Shared fixtures: the tiny German-English corpus and a small REAL checkpoint bundle.

``tiny_bundle`` trains real sentencepiece models on ``tests/fixtures/tiny.{de,en}``, trains a tiny
:class:`~seq2seq.model.seq2seq.Seq2Seq` for a few seconds (plain loop, not the Hydra trainer) so its output
is not pure noise, and saves a real bundle once per test session.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seq2seq.config import plain
from seq2seq.inference.translator import Translator

FIXTURES = Path(__file__).parent / "fixtures"

# the tiny model and its training budget (fixture build stays well under ~15 s on 2 cores)
TINY_MODEL = dict(rnn="gru", embed_dim=32, hidden_size=32, encoder_layers=1, decoder_layers=1,
                  attention="bahdanau", input_feeding=True, dropout=0.0, tie_embeddings=True,
                  bridge=True)
TINY_VOCAB = 250
TINY_STEPS = 150
TINY_BATCH = 32
N_DEV = 12
N_TEST = 12


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of the tiny corpus and of small dev/test splits cut from it.

    Returns:
        ``{"src_train", "tgt_train", "src_dev", "tgt_dev", "src_test", "tgt_test"}`` -> Path.
        ``*_train`` are ``tests/fixtures/tiny.{de,en}``; dev is the first ``N_DEV`` pairs and test
        the next ``N_TEST`` (written to a temporary directory, seen in training too).
    """
    from seq2seq.data import load_parallel

    src, tgt = FIXTURES / "tiny.de", FIXTURES / "tiny.en"
    if not (src.exists() and tgt.exists()):
        pytest.skip("tests/fixtures/tiny.{de,en} missing")
    pairs = load_parallel(src, tgt)
    out = tmp_path_factory.mktemp("tiny_corpus")
    paths = {"src_train": src, "tgt_train": tgt}
    for name, sl in (("dev", slice(0, N_DEV)), ("test", slice(N_DEV, N_DEV + N_TEST))):
        for side, k in (("src", 0), ("tgt", 1)):
            p = out / f"{name}.{'de' if k == 0 else 'en'}"
            p.write_text("".join(pair[k] + "\n" for pair in pairs[sl]), encoding="utf-8")
            paths[f"{side}_{name}"] = p
    return paths


def build_tiny_bundle(corpus: dict[str, Path], seed: int = 0, steps: int = TINY_STEPS) -> dict:
    """Train tokenizers and a tiny model on the tiny corpus; return the bundle dict.

    Args:
        corpus: paths from :func:`tiny_corpus`.
        seed: torch seed for init and batch order.
        steps: optimizer steps.

    Returns:
        A complete bundle (not yet saved).
    """
    from seq2seq.checkpoint import make_bundle
    from seq2seq.config import DataConfig, ModelConfig, TrainConfig, TrainJobConfig
    from seq2seq.data import collate, load_parallel
    from seq2seq.model.seq2seq import Seq2Seq
    from seq2seq.tokenizer import train_tokenizers

    pairs = load_parallel(corpus["src_train"], corpus["tgt_train"])
    src_tok, tgt_tok = train_tokenizers([p[0] for p in pairs], [p[1] for p in pairs], TINY_VOCAB,
                                        hard_vocab_limit=False)
    data = [(src_tok.encode(s)[:60], tgt_tok.encode(t)[:60]) for s, t in pairs]
    cfg = ModelConfig(**TINY_MODEL)
    torch.manual_seed(seed)
    model = Seq2Seq(cfg, src_tok.vocab_size, tgt_tok.vocab_size)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            idx = torch.randint(len(data), (TINY_BATCH,), generator=gen).tolist()
            batch = collate([data[i] for i in idx])
            logits = model(batch.src, batch.src_len, batch.tgt_in)  # (B, T, V)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1), ignore_index=0)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    job = TrainJobConfig(
        model=cfg,
        data=DataConfig(src_lang="de", tgt_lang="en", vocab_size=TINY_VOCAB,
                        **{k: str(v) for k, v in corpus.items()}),
        train=TrainConfig(device="cpu", max_steps=steps),
    )
    config = plain(job)
    config.pop("defaults", None)
    meta = {"src_lang": "de", "tgt_lang": "en", "step": steps, "dev_bleu": 1.5,
            "config": config, "final_train_loss": loss.item()}
    return make_bundle(model, cfg, src_tok, tgt_tok, meta)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_corpus: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a real, small, briefly trained checkpoint bundle (built once per session).

    Its ``meta.config.data`` points at :func:`tiny_corpus`'s absolute paths; ``meta.step`` is
    ``TINY_STEPS`` and ``meta.dev_bleu`` is 1.5 (a fixed marker value).
    """
    from seq2seq.checkpoint import save_bundle

    path = tmp_path_factory.mktemp("tiny_bundle") / "checkpoints" / "best.pt"
    save_bundle(path, build_tiny_bundle(tiny_corpus))
    return path


@pytest.fixture(scope="module")
def translator(tiny_bundle: Path) -> Translator:
    """A Translator of the tiny bundle (one per test module)."""
    return Translator.from_checkpoint(tiny_bundle)


@pytest.fixture(scope="session")
def tiny_bundle_en_de(tiny_corpus: dict[str, Path],
                      tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reverse of :func:`tiny_bundle`: English -> German, trained the same way."""
    from seq2seq.checkpoint import save_bundle

    bundle = build_tiny_bundle({"src_train": tiny_corpus["tgt_train"],
                                "tgt_train": tiny_corpus["src_train"]})
    bundle["meta"].update(src_lang="en", tgt_lang="de")
    path = tmp_path_factory.mktemp("tiny_bundle_en_de") / "best.pt"
    save_bundle(path, bundle)
    return path


@pytest.fixture(scope="session")
def two_models(tiny_bundle: Path, tiny_bundle_en_de: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models file serving ``de-en`` (:func:`tiny_bundle`, the default) and ``en-de``
    (:func:`tiny_bundle_en_de`, beam 3, loaded on first use)."""
    path = tmp_path_factory.mktemp("two_models") / "models.yaml"
    path.write_text(f"- id: de-en\n  checkpoint: {tiny_bundle}\n"
                    f"- id: en-de\n  checkpoint: {tiny_bundle_en_de}\n"
                    "  search: {beam_size: 3}\n  preload: false\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def six_pairs_bundle(tmp_path_factory: pytest.TempPathFactory
                     ) -> tuple[dict, list[tuple[str, str]]]:
    """A tiny model that learnt the first six tiny pairs by heart (each translates exactly),
    as a bundle without the trainer's truecase table or final mark, and those pairs."""
    from seq2seq.data import load_parallel

    pairs = load_parallel(FIXTURES / "tiny.de", FIXTURES / "tiny.en")[:6]
    d = tmp_path_factory.mktemp("six")
    (d / "six.de").write_text("".join(f"{s}\n" for s, _ in pairs), encoding="utf-8")
    (d / "six.en").write_text("".join(f"{t}\n" for _, t in pairs), encoding="utf-8")
    bundle = build_tiny_bundle({"src_train": d / "six.de", "tgt_train": d / "six.en"}, steps=100)
    tr = Translator.from_bundle(bundle)
    assert [t.text for t in tr.translate([s for s, _ in pairs])] == [t for _, t in pairs]
    return bundle, pairs


@pytest.fixture()
def one_thread():
    """torch on one thread for this test: a multi-threaded GEMM splits rows by the batch's size,
    so bit-exact comparisons across batch compositions need one thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
