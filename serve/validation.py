"""Request validation for ``POST /predict`` and ``POST /score``: raw body bytes ->
:class:`TranslateRequest`.

Every check raises :class:`RequestError` with an HTTP status and a message that names the field
and says what is wrong, so a client can fix its request. The checks run in the HTTP process
before a request is queued (so a bad request never reaches the model worker and never shares a
batch with good ones) and again in ``decode_request`` inside the worker (defence in depth; the
worker's loop isolates a failure to its own request).

Accepted body (JSON object, UTF-8)::

    {"text": "Hallo Welt."}                       # or
    {"texts": ["Hallo Welt.", "Guten Morgen."],
     "beam_size": 5, "n_best": 2, "max_length": 50, "return_alignment": true,
     "return_scores": true, "split_sentences": false, "target_prefix": ["Hello", ""]}

    # POST /score: the model's log-prob of given translations
    {"source": "Hallo Welt.", "target": "Hello world."}          # or
    {"sources": [...], "targets": [...], "token_scores": true}

Status codes: 400 for a body that is not UTF-8, not JSON or not a JSON object; 413 for a body over
the byte limit; 422 for a well-formed body whose fields are missing, of the wrong type, empty,
too long (characters or subword tokens), too many, or out of range.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from seq2seq.config import ServeConfig
from seq2seq.inference.documents import split_document

ALLOWED_FIELDS = ("text", "texts", "beam_size", "n_best", "max_length", "return_alignment",
                  "split_sentences", "return_scores", "target_prefix")
SCORE_FIELDS = ("source", "sources", "target", "targets", "token_scores")


class RequestError(Exception):
    """A client error: ``status`` is the HTTP code, ``message`` says what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TranslateRequest:
    """A validated request.

    Attributes:
        texts: source sentences (non-empty, stripped of nothing — sent to the model as given).
        n_tokens: source subword count per text (from the source tokenizer; -1 when unknown).
        beam_size, n_best: search options (``n_best <= beam_size``); None = server default.
        max_length: maximum output length in subwords (EOS excluded); None = server default
            (``max_len_a * src_len + max_len_b``).
        return_alignment: return attention rows and the source/target pieces.
        single: the request used ``"text"`` (a single string) rather than ``"texts"``.
        split_sentences: each text is a document: split into sentences, translated, rejoined
            with its layout (:mod:`seq2seq.inference.documents`); ``n_tokens`` then counts the
            longest sentence.
        return_scores: return per-token log-probs (``/score``: ``token_scores``).
        prefixes: per text a target prefix (``""`` for none), or None; implies one segment
            per text.
        task: ``"translate"`` (``/predict``) or ``"score"`` (``/score``).
        targets: the translations to score (``/score``).
    """

    texts: tuple[str, ...]
    n_tokens: tuple[int, ...] = field(default=())
    beam_size: int | None = None
    n_best: int | None = None
    max_length: int | None = None
    return_alignment: bool = False
    single: bool = False
    split_sentences: bool = True
    return_scores: bool = False
    prefixes: tuple[str, ...] | None = None
    task: str = "translate"
    targets: tuple[str, ...] | None = None

    def to_payload(self) -> dict:
        """Plain-dict form that travels through litserve's request queue."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_payload(cls, payload: dict) -> TranslateRequest:
        """Inverse of :meth:`to_payload`."""
        known = {f.name for f in fields(cls)}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in payload.items() if k in known}
        return cls(**kw)


def max_body_bytes(cfg: ServeConfig) -> int:
    """Upper bound on an acceptable body: every text at the limit, fully ``\\uXXXX``-escaped."""
    return cfg.max_texts * (cfg.max_chars * 12 + 8) + 4096


def parse_body(body: bytes, cfg: ServeConfig) -> object:
    """Decode a raw request body as UTF-8 JSON.

    Raises:
        RequestError: 413 when over :func:`max_body_bytes`, 400 when not UTF-8, not JSON, nested
            too deeply for the parser or holding a number Python will not convert.
    """
    limit = max_body_bytes(cfg)
    if len(body) > limit:
        raise RequestError(413, f"request body is {len(body)} bytes; the limit is {limit}")
    if not body.strip():
        raise RequestError(400, 'request body is empty; send a JSON object like {"text": "..."}')
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(
            400, f"request body is not valid UTF-8 (byte 0x{body[e.start]:02x} at offset {e.start})"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RequestError(
            400, f"request body is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from None
    except RecursionError:
        raise RequestError(400, "request body is not valid JSON here: arrays or objects are "
                                "nested too deeply") from None
    except ValueError as e:  # e.g. an integer literal with more digits than Python converts
        raise RequestError(400, f"request body is not valid JSON here: {e}") from None


def _int_field(payload: dict, name: str, upper: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(422, f"'{name}' must be an integer, got {_json_type(value)}")
    if not 1 <= value <= upper:
        raise RequestError(422, f"'{name}' must be between 1 and {upper}, got {value}")
    return value


def _check_text(text: object, where: str, cfg: ServeConfig, allow_empty: bool = False) -> str:
    if not isinstance(text, str):
        raise RequestError(422, f"{where} must be a string, got {_json_type(text)}")
    if not text.strip() and not allow_empty:
        raise RequestError(422, f"{where} is empty")
    if len(text) > cfg.max_chars:
        raise RequestError(
            422, f"{where} has {len(text)} characters; the limit is {cfg.max_chars}"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(422, f"{where} contains an unpaired UTF-16 surrogate") from None
    return text


def validate_payload(
    payload: object,
    cfg: ServeConfig,
    count_tokens: Callable[[str, bool], int] | None = None,
    default_beam_size: int = 1,
) -> TranslateRequest:
    """Check a decoded JSON body against the schema and the server limits.

    Args:
        payload: the decoded JSON value.
        cfg: limits (``max_chars``, ``max_tokens``, ``max_texts``, ``max_beam_size``,
            ``max_n_best``, ``max_length``).
        count_tokens: ``(text, split) -> subwords`` (of the longest sentence when ``split``;
            :func:`token_counter`); without it the token limit is not checked.
        default_beam_size: beam used when the request gives none (to check ``n_best`` against).

    Returns:
        The validated request.

    Raises:
        RequestError: 400 when the body is not an object, 422 for any field problem.
    """
    if not isinstance(payload, dict):
        raise RequestError(
            400, f'request body must be a JSON object like {{"text": "..."}}, got {_json_type(payload)}'
        )
    unknown = sorted(set(payload) - set(ALLOWED_FIELDS))
    if unknown:
        raise RequestError(
            422, f"unknown field(s) {unknown}; allowed fields are {list(ALLOWED_FIELDS)}"
        )
    has_text, has_texts = "text" in payload, "texts" in payload
    if has_text == has_texts:
        raise RequestError(
            422,
            "give exactly one of 'text' (a string) or 'texts' (a list of strings)"
            + ("" if has_text else "; neither was given"),
        )
    if has_text:
        texts = [_check_text(payload["text"], "'text'", cfg)]
    else:
        raw = payload["texts"]
        if not isinstance(raw, list):
            raise RequestError(
                422, f"'texts' must be a list of strings, got {_json_type(raw)}"
            )
        if not raw:
            raise RequestError(422, "'texts' is an empty list")
        if len(raw) > cfg.max_texts:
            raise RequestError(
                422, f"'texts' has {len(raw)} items; the limit is {cfg.max_texts} per request"
            )
        texts = [_check_text(t, f"'texts[{i}]'", cfg) for i, t in enumerate(raw)]

    split = payload.get("split_sentences", True)
    if split is None:
        split = True
    if not isinstance(split, bool):
        raise RequestError(
            422, f"'split_sentences' must be true or false, got {_json_type(split)}")
    n_tokens: list[int] = []
    for i, t in enumerate(texts):
        n = count_tokens(t, split) if count_tokens is not None else -1
        if n > cfg.max_tokens:
            where = "'text'" if has_text else f"'texts[{i}]'"
            where += ": a sentence" if split else ""
            raise RequestError(
                422, f"{where} has {n} subword tokens; the limit is {cfg.max_tokens}")
        n_tokens.append(n)

    beam_size = _int_field(payload, "beam_size", cfg.max_beam_size)
    n_best = _int_field(payload, "n_best", cfg.max_n_best)
    max_length = _int_field(payload, "max_length", cfg.max_length)
    beam = beam_size if beam_size is not None else default_beam_size
    if n_best is not None and n_best > beam:
        raise RequestError(422, f"'n_best' ({n_best}) must not exceed the beam size ({beam})")
    alignment = _bool_field(payload, "return_alignment", False)
    prefixes = _prefixes(payload, has_text, len(texts), cfg)
    return TranslateRequest(
        texts=tuple(texts),
        n_tokens=tuple(n_tokens),
        beam_size=beam_size,
        n_best=n_best,
        max_length=max_length,
        return_alignment=alignment,
        single=has_text,
        split_sentences=split and prefixes is None,
        return_scores=_bool_field(payload, "return_scores", False),
        prefixes=prefixes,
    )


def _bool_field(payload: dict, name: str, default: bool) -> bool:
    value = payload.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RequestError(422, f"'{name}' must be true or false, got {_json_type(value)}")
    return value


def _prefixes(payload: dict, single: bool, n: int, cfg: ServeConfig) -> tuple[str, ...] | None:
    """``target_prefix``: a string with ``text``, a list of ``n`` strings with ``texts``."""
    raw = payload.get("target_prefix")
    if raw is None:
        return None
    if single:
        raw = [raw] if isinstance(raw, str) else raw
        if not isinstance(raw, list) or len(raw) != 1:
            raise RequestError(422, "'target_prefix' must be a string with 'text'")
    elif not isinstance(raw, list) or len(raw) != n:
        raise RequestError(422, f"'target_prefix' must be a list of {n} strings (one per "
                                f"text; \"\" for none), got {_json_type(raw)}"
                           + (f" of {len(raw)}" if isinstance(raw, list) else ""))
    out = []
    for i, p in enumerate(raw):
        where = "'target_prefix'" if single else f"'target_prefix[{i}]'"
        if not isinstance(p, str):
            raise RequestError(422, f"{where} must be a string, got {_json_type(p)}")
        out.append(_check_text(p, where, cfg, allow_empty=True))
    return tuple(out)


def validate_score_payload(
    payload: object,
    cfg: ServeConfig,
    count_tokens: Callable[[str, bool], int] | None = None,
) -> TranslateRequest:
    """Check a decoded ``POST /score`` body: ``source``/``target`` (strings) or
    ``sources``/``targets`` (lists of the same length), optional ``token_scores``.

    The sources follow the rules of ``/predict`` texts (one segment each); a target may be
    empty (the log-prob of translating to nothing) and has the same character limit.

    Raises:
        RequestError: 400 when the body is not an object, 422 for any field problem (a source
            with no subword pieces, which cannot be scored, included).
    """
    if not isinstance(payload, dict):
        raise RequestError(400, 'request body must be a JSON object like {"source": "...", '
                                f'"target": "..."}}, got {_json_type(payload)}')
    unknown = sorted(set(payload) - set(SCORE_FIELDS))
    if unknown:
        raise RequestError(422, f"unknown field(s) {unknown}; allowed fields are "
                                f"{list(SCORE_FIELDS)}")
    single = "source" in payload or "target" in payload
    if single == ("sources" in payload or "targets" in payload):
        raise RequestError(422, "give 'source' and 'target' (strings) or 'sources' and "
                                "'targets' (lists of strings)")
    if single:
        names = [("'source'", "'target'")]
        raw_src, raw_tgt = [payload.get("source")], [payload.get("target")]
        if "source" not in payload or "target" not in payload:
            raise RequestError(422, "give both 'source' and 'target'")
    else:
        raw_src, raw_tgt = payload.get("sources"), payload.get("targets")
        for key, raw in (("sources", raw_src), ("targets", raw_tgt)):
            if not isinstance(raw, list) or not raw:
                raise RequestError(422, f"'{key}' must be a non-empty list of strings, got "
                                        f"{_json_type(raw)}")
        if len(raw_src) != len(raw_tgt):
            raise RequestError(422, f"'sources' has {len(raw_src)} items but 'targets' has "
                                    f"{len(raw_tgt)}")
        if len(raw_src) > cfg.max_texts:
            raise RequestError(422, f"'sources' has {len(raw_src)} items; the limit is "
                                    f"{cfg.max_texts} per request")
        names = [(f"'sources[{i}]'", f"'targets[{i}]'") for i in range(len(raw_src))]
    sources, targets, n_tokens = [], [], []
    for (ws, wt), s, t in zip(names, raw_src, raw_tgt, strict=True):
        sources.append(_check_text(s, ws, cfg))
        if not isinstance(t, str):
            raise RequestError(422, f"{wt} must be a string, got {_json_type(t)}")
        targets.append(_check_text(t, wt, cfg, allow_empty=True))
        n = count_tokens(s, False) if count_tokens is not None else -1
        if n == 0:
            raise RequestError(422, f"{ws} has no subword pieces; it cannot be scored")
        if n > cfg.max_tokens:
            raise RequestError(422, f"{ws} has {n} subword tokens; the limit is {cfg.max_tokens}")
        n_tokens.append(n)
    return TranslateRequest(texts=tuple(sources), n_tokens=tuple(n_tokens), single=single,
                            split_sentences=False, task="score", targets=tuple(targets),
                            return_scores=_bool_field(payload, "token_scores", False))


def token_counter(tok: object, lang: str) -> Callable[[str, bool], int]:
    """``(text, split) -> subwords`` with the source tokenizer ``tok`` (its ``encode``): the
    whole text, or its longest sentence (as :func:`~seq2seq.inference.documents.split_document`
    cuts it, in language ``lang``) when ``split``."""
    def count(text: str, split: bool) -> int:
        if not split:
            return len(tok.encode(text))
        return max((len(tok.encode(s)) for s in split_document(text, lang).sentences), default=0)

    return count


def _json_type(value: object) -> str:
    """JSON name of a decoded value's type (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
