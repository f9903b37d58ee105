"""Subword tokenization: sentencepiece trained in memory, wrapped in a small :class:`Tokenizer`.

The model is trained from an iterator of sentences and written into a ``BytesIO``, so nothing
touches the disk; the serialized model proto (``Tokenizer.to_bytes()``) is what the checkpoint
bundle stores. Special ids are fixed for every tokenizer of the project::

    PAD_ID = 0, UNK_ID = 1, BOS_ID = 2, EOS_ID = 3

Training is deterministic: sentencepiece's random generator is seeded and training runs on one
thread by default (multi-threaded EM sums in a varying order), so the same sentences, settings and
seed give byte-identical model protos.

A vocabulary size larger than the corpus supports fails with a :class:`ValueError` that says so
(``hard_vocab_limit=True``, the default; the message gives the largest size that fits); pass
``hard_vocab_limit=False`` to accept a smaller vocabulary instead.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence

import sentencepiece as spm

from seq2seq.config import SpmModelType

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3


class Tokenizer:
    """A trained sentencepiece model with the project's special ids.

    Args:
        model_proto: serialized sentencepiece ``ModelProto`` (as from :meth:`to_bytes`).

    Raises:
        ValueError: if the model's special ids differ from ``PAD_ID``/``UNK_ID``/``BOS_ID``/
            ``EOS_ID``.
    """

    def __init__(self, model_proto: bytes) -> None:
        self._proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor(model_proto=self._proto)
        ids = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(
                f"sentencepiece model has special ids pad/unk/bos/eos={ids}, "
                f"expected {(PAD_ID, UNK_ID, BOS_ID, EOS_ID)}"
            )

    @classmethod
    def train(
        cls,
        sentences: Iterable[str],
        vocab_size: int,
        model_type: SpmModelType | str = "unigram",
        character_coverage: float = 1.0,
        seed: int = 0,
        num_threads: int = 1,
        hard_vocab_limit: bool = True,
        byte_fallback: bool = False,
        normalization: str = "nmt_nfkc",
        max_sentence_length: int = 16384,
    ) -> Tokenizer:
        """Train a sentencepiece model in memory.

        Args:
            sentences: training sentences (one per item; empty ones are skipped).
            vocab_size: number of pieces including the 4 special ones.
            model_type: ``"unigram"`` or ``"bpe"``.
            character_coverage: fraction of characters covered by the model (1.0 keeps all).
            seed: sentencepiece random seed.
            num_threads: trainer threads; 1 (default) makes the result independent of scheduling.
            hard_vocab_limit: if True, a ``vocab_size`` the corpus cannot fill is an error; if
                False, the model silently gets fewer pieces.
            byte_fallback: decompose unknown characters into UTF-8 byte pieces instead of UNK
                (uses 256 vocabulary entries).
            normalization: sentencepiece normalization rule (``"nmt_nfkc"``, ``"nfkc"``,
                ``"identity"``, ...).
            max_sentence_length: longer sentences (in bytes) are skipped by the trainer.

        Returns:
            The trained tokenizer.

        Raises:
            ValueError: unknown ``model_type``, no sentences, or ``vocab_size`` too large/small.
        """
        model_type = SpmModelType(model_type).value
        sents = [s for s in sentences if s.strip()]
        if not sents:
            raise ValueError("cannot train a tokenizer on zero non-empty sentences")
        spm.set_random_generator_seed(seed)
        buf = io.BytesIO()
        kwargs = dict(
            sentence_iterator=_iter(sents),
            model_writer=buf,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            num_threads=num_threads,
            hard_vocab_limit=hard_vocab_limit,
            byte_fallback=byte_fallback,
            normalization_rule_name=normalization,
            max_sentence_length=max_sentence_length,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            minloglevel=2,
        )
        try:
            spm.SentencePieceTrainer.train(**kwargs)
        except RuntimeError as err:
            msg = str(err)
            if "Vocabulary size" in msg or "vocab_size" in msg:
                raise ValueError(
                    f"vocab_size={vocab_size} does not fit this corpus of {len(sents)} sentences "
                    f"(sentencepiece: {msg.strip()}). Use a smaller vocab_size or "
                    "hard_vocab_limit=False."
                ) from err
            raise
        return cls(buf.getvalue())

    def encode(self, text: str) -> list[int]:
        """Encode one sentence into piece ids (no BOS/EOS)."""
        return self._sp.encode(text, out_type=int)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode many sentences into piece ids (no BOS/EOS)."""
        return self._sp.encode(list(texts), out_type=int)

    def decode(self, ids: Sequence[int]) -> str:
        """Decode piece ids to text; PAD/BOS/EOS are ignored, UNK becomes `` ⁇ ``."""
        return self._sp.decode([int(i) for i in ids])

    def normalize(self, text: str) -> str:
        """``text`` as the model sees it before cutting it into pieces (sentencepiece's
        normaliser: NFKC, whitespace runs collapsed, ends trimmed), with plain spaces."""
        return self._sp.normalize(text).replace("\u2581", " ").strip()

    def pieces(self, text: str) -> list[str]:
        """Subword pieces of ``text`` (for attention plots)."""
        return self._sp.encode(text, out_type=str)

    def id_to_piece(self, i: int) -> str:
        """Piece string of id ``i``."""
        return self._sp.id_to_piece(int(i))

    def piece_to_id(self, piece: str) -> int:
        """Id of ``piece`` (``UNK_ID`` if absent)."""
        return self._sp.piece_to_id(piece)

    @property
    def vocab_size(self) -> int:
        """Number of pieces, special ones included."""
        return self._sp.get_piece_size()

    def to_bytes(self) -> bytes:
        """Serialized model proto; ``Tokenizer(tok.to_bytes())`` is an identical tokenizer."""
        return self._proto

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and other._proto == self._proto

    def __hash__(self) -> int:
        return hash(self._proto)

    def __getstate__(self) -> dict:
        return {"proto": self._proto}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["proto"])

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size})"


def _iter(sentences: list[str]) -> Iterator[str]:
    yield from sentences


def train_tokenizers(
    src_sentences: Sequence[str],
    tgt_sentences: Sequence[str],
    vocab_size: int,
    model_type: SpmModelType | str = "unigram",
    joint: bool = False,
    **kwargs,
) -> tuple[Tokenizer, Tokenizer]:
    """Train source and target tokenizers, or one joint tokenizer for both sides.

    Args:
        src_sentences: source training sentences.
        tgt_sentences: target training sentences.
        vocab_size: pieces per model (the joint model's total size when ``joint``).
        model_type: ``"unigram"`` or ``"bpe"``.
        joint: train one model on both sides; it is returned twice (the same object).
        **kwargs: further arguments of :meth:`Tokenizer.train` (``seed``, ``character_coverage``...).

    Returns:
        ``(src_tokenizer, tgt_tokenizer)``; ``src_tokenizer is tgt_tokenizer`` when ``joint``.
    """
    if joint:
        tok = Tokenizer.train(list(src_sentences) + list(tgt_sentences), vocab_size, model_type, **kwargs)
        return tok, tok
    src = Tokenizer.train(src_sentences, vocab_size, model_type, **kwargs)
    tgt = Tokenizer.train(tgt_sentences, vocab_size, model_type, **kwargs)
    return src, tgt
