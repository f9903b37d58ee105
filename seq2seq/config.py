"""Configuration schemas as plain dataclasses, and the allowed values of every choice.

These are the single source of truth for every option. Library code (model, search, training)
takes these dataclasses; only the entry points register them with Hydra's ConfigStore so that a
misspelled key, a wrong type or a value outside a choice fails at once with a message naming the
key (and, for a choice, listing the allowed values). Numeric ranges are checked where they are
used: :func:`seq2seq.search.scoring.check_search_config` (search options) and
:func:`seq2seq.training.job_check.check_train_job` (a whole training job).

The choices (:class:`RNNType`, :class:`AttentionType`, ...) are string enums: a member compares
equal to its value (``ModelConfig().rnn == "gru"``), and a dataclass built by hand from plain
strings converts them in ``__post_init__`` (a ValueError names the key and the choices), so the
modules that use them never check them again. This module imports no other ``seq2seq`` module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, ClassVar


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


class _Choices:
    """Mixin: convert plain strings of the ``_choices`` fields to their enum, naming the key."""

    _section: ClassVar[str] = ""
    _choices: ClassVar[dict[str, type[Choice]]] = {}

    def __post_init__(self) -> None:
        for name, kind in self._choices.items():
            value = getattr(self, name)
            if isinstance(value, kind):
                continue
            try:
                setattr(self, name, kind(value))
            except ValueError:
                raise ValueError(f"{self._section}.{name} must be one of {kind.values()}, "
                                 f"got {value!r}") from None


def plain(obj: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` with every :class:`Choice` replaced by its string.

    What a checkpoint or a JSON report stores: a bundle must hold only plain data to load with
    ``weights_only=True``.
    """
    return asdict(obj, dict_factory=lambda kv: {k: (v.value if isinstance(v, Enum) else v)
                                                for k, v in kv})


@dataclass
class ModelConfig(_Choices):
    """Encoder-decoder architecture.

    Attributes:
        rnn: recurrent cell of encoder and decoder: ``"gru"``, ``"lstm"``, or the Elman RNN
            ``"rnn_tanh"`` / ``"rnn_relu"`` (no gates: the vanishing-gradient baseline).
        embed_dim: source and target embedding size.
        hidden_size: per-direction encoder hidden size and decoder hidden size.
        encoder_layers: stacked bidirectional encoder layers.
        decoder_layers: stacked decoder layers.
        attention: ``"bahdanau"``, ``"luong_dot"`` or ``"luong_general"``.
        input_feeding: feed the previous attentional vector into the next decoder step.
        dropout: dropout on embeddings, between layers and before the output projection.
        tie_embeddings: share the target embedding matrix with the output projection
            (needs ``embed_dim`` sized attentional vectors; a projection is added if different).
        bridge: initialise the decoder state from the encoder's final states (else zeros).
    """

    _section: ClassVar[str] = "model"
    _choices: ClassVar[dict[str, type[Choice]]] = {"rnn": RNNType, "attention": AttentionType}

    rnn: RNNType = RNNType.gru
    embed_dim: int = 256
    hidden_size: int = 256
    encoder_layers: int = 1
    decoder_layers: int = 1
    attention: AttentionType = AttentionType.bahdanau
    input_feeding: bool = True
    dropout: float = 0.2
    tie_embeddings: bool = True
    bridge: bool = True


@dataclass
class DataConfig(_Choices):
    """Parallel corpus and subword settings.

    Attributes:
        src_lang, tgt_lang: language codes (for metadata and sacreBLEU signatures).
        src_train, tgt_train, src_dev, tgt_dev, src_test, tgt_test: text files, one sentence per
            line, optionally gzipped; relative paths are resolved against the original working
            directory of the run.
        vocab_size: sentencepiece vocabulary size (per side unless ``joint_vocab``).
        spm_model_type: ``"unigram"`` or ``"bpe"``.
        joint_vocab: one sentencepiece model for both sides.
        max_src_len, max_tgt_len: training pairs longer than this (in subwords) are dropped.
        dev_max_sentences: validate on at most this many dev sentences (0 = all).
        spm_src, spm_tgt: existing sentencepiece ``.model`` files to use instead of training
            one for that side (its special ids must be pad/unk/bos/eos = 0/1/2/3); with
            ``joint_vocab`` one model, ``spm_src``, serves both sides.
    """

    _section: ClassVar[str] = "data"
    _choices: ClassVar[dict[str, type[Choice]]] = {"spm_model_type": SpmModelType}

    src_lang: str = "de"
    tgt_lang: str = "en"
    src_train: str = "data/bible/train.de.gz"
    tgt_train: str = "data/bible/train.en.gz"
    src_dev: str = "data/bible/dev.de.gz"
    tgt_dev: str = "data/bible/dev.en.gz"
    src_test: str = "data/bible/test.de.gz"
    tgt_test: str = "data/bible/test.en.gz"
    vocab_size: int = 8000
    spm_model_type: SpmModelType = SpmModelType.unigram
    joint_vocab: bool = False
    max_src_len: int = 100
    max_tgt_len: int = 100
    dev_max_sentences: int = 0
    spm_src: str | None = None
    spm_tgt: str | None = None


@dataclass
class SearchConfig(_Choices):
    """Decoding options (greedy when ``beam_size == 1``).

    Attributes:
        beam_size: hypotheses kept per sentence.
        n_best: hypotheses returned per sentence (``<= beam_size``); with ``sampling``, the
            number of samples per sentence.
        length_penalty: ``"gnmt"`` (((5+|y|)/6)^alpha), ``"average"`` (score/|y|) or ``"none"``.
        alpha: GNMT length-penalty exponent.
        max_len_a, max_len_b: maximum output length ``a * src_len + b`` (EOS excluded).
        min_len: minimum output length before EOS is allowed (EOS excluded).
        no_repeat_ngram_size: block repeated n-grams of this size (0 = off).
        return_alignment: return per-token attention rows.
        return_scores: return per-token log-probs of the hypotheses (EOS last).
        batch_size: sentences per search batch when translating many texts.
        batch_tokens: instead of ``batch_size``, cut batches so that the longest source times
            the sentence count stays within this many subwords (0 = off).
        sampling: draw ``n_best`` samples per sentence instead of searching
            (:mod:`seq2seq.search.sampling`; ``beam_size`` is ignored).
        temperature: sampling temperature (> 0).
        top_k: sample among the ``top_k`` most probable tokens (0 = all).
        top_p: sample among the most probable tokens that reach this probability mass (1 = all).
        seed: sampling seed (the same seed gives the same samples).
    """

    _section: ClassVar[str] = "search"
    _choices: ClassVar[dict[str, type[Choice]]] = {"length_penalty": LengthPenalty}

    beam_size: int = 5
    n_best: int = 1
    length_penalty: LengthPenalty = LengthPenalty.gnmt
    alpha: float = 1.0
    max_len_a: float = 1.5
    max_len_b: int = 10
    min_len: int = 1
    no_repeat_ngram_size: int = 0
    return_alignment: bool = False
    return_scores: bool = False
    batch_size: int = 64
    batch_tokens: int = 0
    sampling: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0


@dataclass
class TrainConfig(_Choices):
    """Optimisation, validation and checkpointing.

    The defaults are the shipped CPU preset (``conf/train/default.yaml`` adds nothing).

    Attributes:
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        precision: ``"auto"`` (bf16 autocast on CUDA when supported, else fp16 with GradScaler;
            fp32 on CPU), ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        threads: CPU threads for torch per process (0 = all cores).
        max_tokens: target+source padded tokens per batch (token-based batching).
        accum_steps: gradient accumulation steps per update.
        optimizer: ``"adam"`` or ``"adamw"``.
        lr, betas, weight_decay, clip_norm: optimiser settings.
        label_smoothing: label smoothing epsilon.
        schedule: ``"plateau"`` (warmup then halve on dev plateau), ``"inverse_sqrt"``,
            ``"noam"``-style warmup+decay, ``"constant"``, or budget-aware: ``"wsd"``
            (warmup, stable peak, linear cooldown to ``min_lr`` over the last ``cooldown`` of
            the budget) and ``"cosine"`` (cosine from the peak to ``min_lr`` over the budget).
            The budget is whichever of ``max_steps``, ``max_epochs``, ``max_minutes`` ends first
            (progress = the largest of the fractions done).
        warmup_steps, lr_decay, lr_patience, min_lr: schedule settings.
        cooldown: ``wsd``: fraction of the budget, at its end, over which the rate decays.
        ema_decay: exponential moving average of the weights (bias-corrected,
            :mod:`seq2seq.training.ema`) with this decay, used for validation, ``best.pt`` and
            the kept best checkpoints; ``last.pt`` keeps the raw weights (0 = off).
        max_epochs, max_steps, max_minutes: stop at whichever comes first (0 = unlimited);
            max_minutes counts training wall time (validation included, resumed segments
            added up), not data loading or sentencepiece training.
        validate_every: updates between validations (dev loss, perplexity, BLEU; 0 = off).
        validate_minutes: also validate when this many minutes passed since the last one (0=off).
        val_beam_size: beam for dev BLEU (1 = greedy).
        best_metric: dev metric that picks ``best.pt``, counts toward ``patience`` and drives
            the plateau schedule: ``"bleu"``, ``"chrf"`` (higher is better), ``"loss"`` or
            ``"ppl"`` (lower is better).
        patience: early stopping after this many validations without a new best (0 = off).
        keep_last: number of step checkpoints to keep besides best.pt/last.pt.
        keep_best: also keep the N best validations' weights as ``best_step_<S>.pt`` (for
            ``seq2seq-average --best N``); 1 = only ``best.pt``.
        resume: continue from ``<run_dir>/checkpoints/last.pt`` when present.
        init_from: start from this bundle's weights and sentencepiece models (fine-tuning,
            domain adaptation); the model config comes from the bundle. ``resume`` wins when
            the run directory already holds ``last.pt``.
        reset_optimizer: with ``init_from``: fresh optimizer state (else the bundle's; needs a
            bundle with training state, e.g. ``last.pt``).
        reset_schedule: with ``init_from``: fresh learning-rate schedule (warmup again).
        reset_best: with ``init_from``: forget the bundle's best dev score (a new dev set).
        tensorboard: write TensorBoard scalars to ``<run_dir>/tensorboard`` (rank 0).
        log_every: updates between progress/CSV log lines.
    """

    _section: ClassVar[str] = "train"
    _choices: ClassVar[dict[str, type[Choice]]] = {
        "precision": Precision, "optimizer": Optimizer, "schedule": Schedule,
        "best_metric": BestMetric}

    device: str = "auto"
    precision: Precision = Precision.auto
    threads: int = 2
    max_tokens: int = 6000
    accum_steps: int = 1
    optimizer: Optimizer = Optimizer.adam
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    label_smoothing: float = 0.1
    schedule: Schedule = Schedule.wsd
    warmup_steps: int = 100
    lr_decay: float = 0.5
    cooldown: float = 0.2
    ema_decay: float = 0.0
    lr_patience: int = 1
    min_lr: float = 1e-5
    max_epochs: int = 0
    max_steps: int = 0
    max_minutes: float = 16.0
    validate_every: int = 0
    validate_minutes: float = 3.0
    val_beam_size: int = 1
    best_metric: BestMetric = BestMetric.bleu
    patience: int = 0
    keep_last: int = 2
    keep_best: int = 1
    resume: bool = False
    init_from: str | None = None
    reset_optimizer: bool = True
    reset_schedule: bool = True
    reset_best: bool = True
    tensorboard: bool = True
    log_every: int = 20


@dataclass
class ServeConfig(_Choices):
    """HTTP endpoint.

    Attributes:
        host, port: where litserve listens.
        max_batch_size: dynamic-batching limit (requests per model call).
        batch_timeout: seconds to wait to fill a batch.
        max_chars: per-text character limit.
        max_tokens: per-text subword limit.
        max_texts: texts per request.
        max_beam_size, max_n_best, max_length: upper bounds for per-request options.
        workers_per_device: litserve workers.
        length_group_ratio: within one dynamic batch, requests are searched in chunks whose
            longest source is at most this many times the shortest (short chunks first, each
            answered as soon as it is done); 0 = one chunk per search config.
        threads: torch CPU threads in the model worker (0 = torch's default).
        timeout: the per-request deadline: seconds a request may wait in the queue before it is
            answered 504 (one picked up in time is finished).
        max_queue: requests accepted at once (queued or being translated); beyond it ``503``
            with ``Retry-After``.
        api_keys: when non-empty, ``/predict`` needs ``Authorization: Bearer <key>`` with one of
            these (else 401); ``/health``, ``/info`` and the demo page stay open. Also read, one
            per line, from the file named by the environment variable ``SEQ2SEQ_API_KEYS_FILE``
            (keeps keys off the command line). Keys never appear in ``/info``, logs or errors.
        precision: the model worker's precision: :data:`INFERENCE_PRECISION` (fp32) unless set;
            ``"auto"`` (bf16 where the device has native bf16 matrix support, else fp32),
            ``"bf16"`` or ``"fp16"`` (CUDA).
        shutdown_grace: seconds that SIGTERM/SIGINT gives the requests in flight to be answered
            before the HTTP process is stopped regardless (idle and half-open connections are
            closed at once).
        log_level: uvicorn/litserve log level (``"info"``, ``"warning"``, ...).
    """

    _section: ClassVar[str] = "serve"
    _choices: ClassVar[dict[str, type[Choice]]] = {"precision": Precision}

    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 32
    batch_timeout: float = 0.01
    max_chars: int = 1000
    max_tokens: int = 200
    max_texts: int = 64
    max_beam_size: int = 16
    max_n_best: int = 16
    max_length: int = 400
    workers_per_device: int = 1
    length_group_ratio: float = 2.0
    threads: int = 0
    timeout: float = 60.0
    max_queue: int = 256
    api_keys: list[str] = field(default_factory=list)
    precision: Precision = INFERENCE_PRECISION
    shutdown_grace: float = 20.0
    log_level: str = "info"

    def __repr__(self) -> str:  # never print the keys
        shown = {k: str(v) if isinstance(v, Choice) else v for k, v in self.__dict__.items()
                 if k != "api_keys"}
        return f"{type(self).__name__}({shown}, api_keys=<{len(self.api_keys)} keys>)"


@dataclass
class TrainJobConfig:
    """Top-level config of ``seq2seq-train``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    seed: int = 1234
    defaults: list[Any] = field(default_factory=list)
