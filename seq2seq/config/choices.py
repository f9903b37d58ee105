"""The allowed values of every config choice, as string enums, and the inference precision.

A member compares equal to its string (``RNNType.gru == "gru"``), prints and saves as it.
"""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A config value from a fixed set; compares equal to, prints as and saves as its string."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def values(cls) -> list[str]:
        """The allowed strings, in declaration order."""
        return [m.value for m in cls]


class RNNType(Choice):
    """Recurrent cell of encoder and decoder: gated (GRU, LSTM) or the plain Elman RNN with a
    tanh or relu activation."""

    gru, lstm, rnn_tanh, rnn_relu = "gru", "lstm", "rnn_tanh", "rnn_relu"

    @property
    def nonlinearity(self) -> str | None:
        """``"tanh"``/``"relu"`` for the Elman cells, None for the gated ones."""
        return self.value[4:] if self.value.startswith("rnn_") else None


class AttentionType(Choice):
    """Attention scoring function."""

    bahdanau, luong_dot, luong_general = "bahdanau", "luong_dot", "luong_general"


class SpmModelType(Choice):
    """sentencepiece model type."""

    unigram, bpe = "unigram", "bpe"


class LengthPenalty(Choice):
    """Length normalisation of hypothesis scores (see :mod:`seq2seq.search`)."""

    gnmt, average, none = "gnmt", "average", "none"


class Optimizer(Choice):
    """Optimiser of a training run."""

    adam, adamw = "adam", "adamw"


class Schedule(Choice):
    """Learning-rate schedule (see :mod:`seq2seq.training.schedule`)."""

    plateau, inverse_sqrt, noam, constant = "plateau", "inverse_sqrt", "noam", "constant"
    wsd, cosine = "wsd", "cosine"  # budget-aware: reach min_lr when the run's budget ends

    @property
    def needs_budget(self) -> bool:
        """The schedule follows the fraction of the run done (max_steps/epochs/minutes)."""
        return self in (Schedule.wsd, Schedule.cosine)


class Precision(Choice):
    """Autocast precision (see :func:`seq2seq.runtime.resolve_precision`)."""

    auto, fp32, bf16, fp16 = "auto", "fp32", "bf16", "fp16"


#: The precision every translating entry point uses unless told otherwise: the Python API
#: (``Translator.from_checkpoint``), ``seq2seq-evaluate``, ``seq2seq-translate``,
#: ``seq2seq-score``, ``seq2seq-serve`` and the trainer's dev translations. float32, because the
#: same checkpoint must give the same text and scores through every entry point on every machine,
#: and because bf16 decoding does not pay for that loss: on the AMD Zen 4 machine (native
#: AVX512-BF16) greedy decoding in bf16 runs at 0.63x float32 and beam 5 at 1.21x
#: (benchmarks/README.md, "bf16"). ``precision=auto`` or ``bf16`` opts in.
INFERENCE_PRECISION = Precision.fp32


class BestMetric(Choice):
    """Dev metric that picks ``best.pt`` and drives early stopping and plateau decay."""

    bleu, chrf, loss, ppl = "bleu", "chrf", "loss", "ppl"

    @property
    def higher_is_better(self) -> bool:
        """BLEU and chrF grow with quality, loss and perplexity shrink."""
        return self in (BestMetric.bleu, BestMetric.chrf)
