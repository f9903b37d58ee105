"""Configuration schemas as plain dataclasses, and the allowed values of every choice.

These are the single source of truth for every option and its default: library code (model,
search, training, serving) takes these dataclasses, and the entry points register them with
Hydra's ConfigStore so that a misspelled key or a wrong type fails at once naming the key.

Each dataclass checks its own values when it is built (``__post_init__``): a choice
(:class:`RNNType`, :class:`AttentionType`, ...) is converted from its plain string, and every
number is checked against its range (:class:`Range`), so ``SearchConfig(beam_size=0)`` raises
``ValueError("search.beam_size must be >= 1, got 0")`` wherever it is built: by Hydra from a
command line, by the server from a request, or by hand. The modules that take a config trust
it and never check it again; what needs the file system (do the data files exist?) is checked
once per training job by :func:`seq2seq.training.job.prepare_job`.

The choices are string enums: a member compares equal to its value
(``ModelConfig().rnn == "gru"``) and saves as its string. This module imports no other
``seq2seq`` module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from seq2seq.config.checked import (
    AT_LEAST_0,
    AT_LEAST_1,
    FINITE,
    FRACTION,
    POSITIVE,
    Range,
    _Checked,
    plain,
)
from seq2seq.config.choices import (
    INFERENCE_PRECISION,
    AttentionType,
    BestMetric,
    Choice,
    LengthPenalty,
    Optimizer,
    Precision,
    RNNType,
    Schedule,
    SpmModelType,
)


@dataclass
class ModelConfig(_Checked):
    """Encoder-decoder architecture.

    Attributes:
        rnn: recurrent cell of encoder and decoder: ``"gru"``, ``"lstm"``, or the Elman RNN
            ``"rnn_tanh"`` / ``"rnn_relu"`` (no gates: the vanishing-gradient baseline).
        embed_dim: source and target embedding size.
        hidden_size: per-direction encoder hidden size and decoder hidden size.
        encoder_layers: stacked bidirectional encoder layers.
        decoder_layers: stacked decoder layers.
        attention: ``"bahdanau"``, ``"luong_dot"`` or ``"luong_general"``.
        input_feeding: feed the previous attentional vector into the next decoder step (the
            Luong et al. 2015 setup; off by default: without it the teacher-forced decoder runs
            as one fused RNN call per layer instead of a per-step loop, ~1.4x the training
            tokens/s, and in a fixed training time that wins, benchmarks/README.md).
        dropout: dropout on embeddings, between layers and before the output projection.
        tie_embeddings: share the target embedding matrix with the output projection
            (needs ``embed_dim`` sized attentional vectors; a projection is added if different).
        bridge: initialise the decoder state from the encoder's final states (else zeros).
    """

    _section: ClassVar[str] = "model"
    _choices: ClassVar[dict[str, type[Choice]]] = {"rnn": RNNType, "attention": AttentionType}
    _ranges: ClassVar[dict[str, Range]] = {
        "embed_dim": AT_LEAST_1, "hidden_size": AT_LEAST_1, "encoder_layers": AT_LEAST_1,
        "decoder_layers": AT_LEAST_1, "dropout": FRACTION}

    rnn: RNNType = RNNType.gru
    embed_dim: int = 256
    hidden_size: int = 256
    encoder_layers: int = 1
    decoder_layers: int = 1
    attention: AttentionType = AttentionType.luong_general
    input_feeding: bool = False
    dropout: float = 0.2
    tie_embeddings: bool = True
    bridge: bool = True


@dataclass
class DataConfig(_Checked):
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
        drop_final_punct: fraction of the training pairs ending in a sentence mark on both
            sides that lose it on both sides (chosen once from the seed), so the model also
            learns to end input that has none (:mod:`seq2seq.data.punctuation`); 0 = off.
    """

    _section: ClassVar[str] = "data"
    _choices: ClassVar[dict[str, type[Choice]]] = {"spm_model_type": SpmModelType}
    _ranges: ClassVar[dict[str, Range]] = {
        "vocab_size": Range(8), "max_src_len": AT_LEAST_1, "max_tgt_len": AT_LEAST_1,
        "dev_max_sentences": AT_LEAST_0, "drop_final_punct": Range(0, 1)}

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
    drop_final_punct: float = 0.0

    def _check(self) -> None:
        if self.joint_vocab and self.spm_tgt and self.spm_tgt != self.spm_src:
            raise ValueError("data.spm_tgt: with data.joint_vocab=true one model "
                             "(data.spm_src) serves both sides")


@dataclass
class SearchConfig(_Checked):
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
        recase_input: a source typed all in capitals or all in lowercase is truecased before
            translation (each word in its most frequent form in the training text, from the
            bundle), and a source in capitals gets its translation in capitals
            (:mod:`seq2seq.inference.casing`); not for a source with a target prefix, nor in
            scoring.
        punctuate_input: a source that ends in a letter or digit is translated with the
            training source's usual final mark appended (the bundle's ``final_mark``), and its
            translation loses its final marks, so it ends as the source does
            (:mod:`seq2seq.inference.source_form`); not for a source with a target prefix, nor
            in scoring, nor with a bundle that has no ``final_mark``.
    """

    _section: ClassVar[str] = "search"
    _choices: ClassVar[dict[str, type[Choice]]] = {"length_penalty": LengthPenalty}
    _ranges: ClassVar[dict[str, Range]] = {
        "beam_size": AT_LEAST_1, "n_best": AT_LEAST_1, "alpha": FINITE, "max_len_a": FINITE,
        "max_len_b": FINITE, "min_len": AT_LEAST_0, "no_repeat_ngram_size": AT_LEAST_0,
        "batch_size": AT_LEAST_1, "batch_tokens": AT_LEAST_0, "temperature": POSITIVE,
        "top_k": AT_LEAST_0, "top_p": Range(0, 1, lo_open=True), "seed": FINITE}

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
    recase_input: bool = True
    punctuate_input: bool = True

    def _check(self) -> None:
        if not self.sampling and self.n_best > self.beam_size:
            raise ValueError(f"search.n_best must be in [1, beam_size={self.beam_size}], "
                             f"got {self.n_best}")


@dataclass
class TrainConfig(_Checked):
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
    _ranges: ClassVar[dict[str, Range]] = {
        "threads": AT_LEAST_0, "max_tokens": AT_LEAST_1, "accum_steps": AT_LEAST_1,
        "lr": POSITIVE, "weight_decay": AT_LEAST_0, "clip_norm": FINITE,
        "label_smoothing": FRACTION, "warmup_steps": AT_LEAST_0,
        "lr_decay": Range(0, 1, lo_open=True), "cooldown": Range(0, 1, lo_open=True),
        "ema_decay": Range(0, 1, hi_open=True, note="(0 = off)"), "lr_patience": AT_LEAST_0,
        "min_lr": AT_LEAST_0, "max_epochs": AT_LEAST_0, "max_steps": AT_LEAST_0,
        "max_minutes": AT_LEAST_0, "validate_every": AT_LEAST_0, "validate_minutes": AT_LEAST_0,
        "val_beam_size": AT_LEAST_1, "patience": AT_LEAST_0, "keep_last": AT_LEAST_0,
        "keep_best": AT_LEAST_1, "log_every": AT_LEAST_1}

    device: str = "auto"
    precision: Precision = Precision.auto
    threads: int = 2
    max_tokens: int = 6000
    accum_steps: int = 1
    optimizer: Optimizer = Optimizer.adam
    lr: float = 6e-3
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

    def _check(self) -> None:
        if len(self.betas) != 2:
            raise ValueError(f"train.betas must hold two numbers, got {list(self.betas)}")
        if self.max_steps <= 0 and self.max_epochs <= 0 and self.max_minutes <= 0:
            raise ValueError("set at least one of train.max_steps, train.max_epochs, "
                             "train.max_minutes (all are 0 = unlimited)")


@dataclass
class ServeConfig(_Checked):
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
        max_request_chars: characters of all texts of one request together (0 = no limit
            beyond ``max_texts * max_chars``).
        api_keys: when non-empty, the translating endpoints need a key (``Authorization:
            Bearer <key>``, or ``api_key`` in a LibreTranslate body) with one of these (else
            401/403); ``/health``, ``/info`` and the demo page stay open. Also read, one per line
            with optional per-key limits, from the file named by the environment variable
            ``SEQ2SEQ_API_KEYS_FILE`` (keeps keys off the command line; :mod:`serve.admission`).
            Keys never appear in ``/info``, logs, metrics or errors.
        max_loaded: models held in memory at once (least recently used unloaded first; 0 =
            every served model).
        cache_size: translated sentences kept per server (least recently used dropped first;
            0 = no cache); a repeated sentence with the same model and search options is
            answered from it, byte for byte what searching again gives.
        cors_origins: browser origins allowed to call the API (CORS; ``["*"]``: any origin);
            empty: no CORS headers.
        metrics: serve Prometheus metrics at ``GET /metrics``.
        metrics_token: when set (or the environment variable ``SEQ2SEQ_METRICS_TOKEN``),
            ``/metrics`` needs ``Authorization: Bearer <token>``.
        precision: the model worker's precision: :data:`INFERENCE_PRECISION` (fp32) unless set;
            ``"auto"`` (bf16 where the device has native bf16 matrix support, else fp32),
            ``"bf16"`` or ``"fp16"`` (CUDA).
        shutdown_grace: seconds that SIGTERM/SIGINT gives the requests in flight to be answered
            before the HTTP process is stopped regardless (idle and half-open connections are
            closed at once).
        log_level: uvicorn/litserve log level (``"info"``, ``"warning"``, ...).
    """

    _section: ClassVar[str] = ""  # seq2seq-serve takes these keys at the top level
    _choices: ClassVar[dict[str, type[Choice]]] = {"precision": Precision}
    _ranges: ClassVar[dict[str, Range]] = {
        "port": Range(0, 65535), "max_batch_size": AT_LEAST_1, "batch_timeout": AT_LEAST_0,
        "max_chars": AT_LEAST_1, "max_tokens": AT_LEAST_1, "max_texts": AT_LEAST_1,
        "max_beam_size": AT_LEAST_1, "max_n_best": AT_LEAST_1, "max_length": AT_LEAST_1,
        "workers_per_device": AT_LEAST_1, "length_group_ratio": AT_LEAST_0,
        "threads": AT_LEAST_0, "timeout": POSITIVE, "max_queue": AT_LEAST_1,
        "shutdown_grace": AT_LEAST_0, "max_request_chars": AT_LEAST_0, "max_loaded": AT_LEAST_0,
        "cache_size": AT_LEAST_0}

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
    max_request_chars: int = 0
    api_keys: list[str] = field(default_factory=list)
    precision: Precision = INFERENCE_PRECISION
    shutdown_grace: float = 20.0
    log_level: str = "info"
    max_loaded: int = 0
    cache_size: int = 10000
    cors_origins: list[str] = field(default_factory=list)
    metrics: bool = True
    metrics_token: str | None = None

    def __repr__(self) -> str:  # never print the keys or the metrics token
        shown = {k: str(v) if isinstance(v, Choice) else v for k, v in self.__dict__.items()
                 if k not in ("api_keys", "metrics_token")}
        return (f"{type(self).__name__}({shown}, api_keys=<{len(self.api_keys)} keys>, "
                f"metrics_token=<{'set' if self.metrics_token else 'none'}>)")


@dataclass
class TrainJobConfig:
    """Top-level config of ``seq2seq-train``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    seed: int = 1234
    defaults: list[Any] = field(default_factory=list)


__all__ = ["INFERENCE_PRECISION", "AttentionType", "BestMetric", "Choice", "DataConfig",
           "LengthPenalty", "ModelConfig", "Optimizer", "Precision", "RNNType", "Range",
           "Schedule", "SearchConfig", "ServeConfig", "SpmModelType", "TrainConfig",
           "TrainJobConfig", "plain"]
