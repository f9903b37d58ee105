"""Request validation for ``POST /predict`` and ``POST /score``: raw body bytes ->
:class:`TranslateRequest`, checked once, in the HTTP process, before the request is queued (so a
bad request never reaches the model worker and never shares a batch with good ones).

The checks are the request models of :mod:`serve.schemas` (pydantic, strict JSON types, the
server's limits as the validation context); this module parses the body, runs them and turns
their errors into one :class:`RequestError` whose message names the field and says what is
wrong, so a client can fix its request::

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

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from seq2seq.config import ServeConfig
from seq2seq.inference.documents import split_document
from serve.schemas import Limits, Router, ScoreBody, TranslateBody, json_type

ALLOWED_FIELDS = tuple(TranslateBody.model_fields)
SCORE_FIELDS = tuple(ScoreBody.model_fields)


class RequestError(Exception):
    """A client error: ``status`` is the HTTP code, ``message`` says what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TranslateRequest:
    """A validated request, as it travels to the model worker.

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
        task: ``"translate"`` (``/predict``, ``/translate``) or ``"score"`` (``/score``).
        targets: the translations to score (``/score``).
        model: id of the model to use ("" on a server with one model and no catalog).
        alternatives: also return this many other translations per text, the next best ones
            rejoined per document (LibreTranslate's ``alternatives``).
        glossary: source term -> target term, added to the model's glossary (or None).
        format: ``"text"``, ``"html"`` or ``"markdown"`` (markup documents).
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
    model: str = ""
    alternatives: int = 0
    glossary: dict[str, str] | None = None
    format: str = "text"

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


def _where(loc: tuple) -> str:
    """``("texts", 1)`` -> ``"'texts[1]'"``."""
    name = str(loc[0]) if loc else "body"
    return f"'{name}" + "".join(f"[{i}]" for i in loc[1:] if isinstance(i, int)) + "'"


def _message(model: type[BaseModel], err: ErrorDetails) -> str:
    """One pydantic error as a sentence that names the field."""
    loc, kind, got = err["loc"], err["type"], json_type(err.get("input"))
    where = _where(loc)
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{where} must be an integer, got {got}"
    if kind == "bool_type":
        return f"{where} must be true or false, got {got}"
    if kind == "string_type":
        return f"{where} must be a string, got {got}"
    if kind == "dict_type":
        return f"{where} must be an object of strings, got {got}"
    if kind in ("list_type", "too_short"):
        info = model.model_fields.get(str(loc[0])) if loc else None
        nonempty = info is not None and any(getattr(m, "min_length", 0) for m in info.metadata)
        return f"{where} must be a {'non-empty ' if nonempty else ''}list of strings, got {got}"
    if not loc or "where" in (err.get("ctx") or {}):  # a whole-body rule: its own sentence
        return err["msg"]
    return f"{where} {err['msg']}"


def validate_body(model: type[BaseModel], payload: object, limits: Limits,
                  example: str) -> BaseModel:
    """``model.model_validate(payload)`` with the limits as context, errors as one
    :class:`RequestError`.

    Raises:
        RequestError: 400 when the body is not a JSON object; 422 naming the first problem
            (unknown fields first, then the fields in their order, then the rules across
            fields).
    """
    if not isinstance(payload, dict):
        raise RequestError(400, f"request body must be a JSON object like {example}, got "
                                f"{json_type(payload)}")
    try:
        return model.model_validate(payload, context=limits)
    except ValidationError as e:
        errors = e.errors()
        unknown = sorted(str(err["loc"][0]) for err in errors if err["type"] == "extra_forbidden")
        if unknown:
            raise RequestError(422, f"unknown field(s) {unknown}; allowed fields are "
                                    f"{list(model.model_fields)}") from None
        raise RequestError(422, _message(model, errors[0])) from None


def validate_payload(
    payload: object,
    cfg: ServeConfig,
    count_tokens: Callable[[str, bool], int] | None = None,
    default_beam_size: int = 1,
    router: Router | None = None,
) -> TranslateRequest:
    """Check a decoded ``POST /predict`` body (:class:`~serve.schemas.TranslateBody`).

    Args:
        payload: the decoded JSON value.
        cfg: limits (``max_chars``, ``max_tokens``, ``max_texts``, ``max_beam_size``,
            ``max_n_best``, ``max_length``, ``max_request_chars``).
        count_tokens: ``(text, split) -> subwords`` (of the longest sentence when ``split``;
            :func:`token_counter`); without it the token limit is not checked.
        default_beam_size: beam used when the request gives none (to check ``n_best`` against).
        router: a catalog's router (:class:`~serve.schemas.Limits`): the chosen model's
            counter and beam replace the two above.

    Raises:
        RequestError: 400 when the body is not an object or names a model not served, 422 for
            any field problem.
    """
    body = validate_body(TranslateBody, payload,
                         Limits(cfg, count_tokens, default_beam_size, router), '{"text": "..."}')
    assert isinstance(body, TranslateBody)
    prefixes = body.prefixes
    return TranslateRequest(
        texts=tuple(t for _, t in body.named_texts()),
        n_tokens=body.n_tokens,
        beam_size=body.beam_size,
        n_best=body.n_best,
        max_length=body.max_length,
        return_alignment=bool(body.return_alignment),
        single=body.text is not None,
        split_sentences=body.split_sentences is not False and prefixes is None,
        return_scores=bool(body.return_scores),
        prefixes=prefixes,
        model=body.route.model,
        glossary=body.glossary,
        format=body.format or "text",
    )


def validate_score_payload(
    payload: object,
    cfg: ServeConfig,
    count_tokens: Callable[[str, bool], int] | None = None,
    router: Router | None = None,
) -> TranslateRequest:
    """Check a decoded ``POST /score`` body (:class:`~serve.schemas.ScoreBody`).

    The sources follow the rules of ``/predict`` texts (one segment each); a target may be
    empty (the log-prob of translating to nothing) and has the same character limit.

    Raises:
        RequestError: 400 when the body is not an object, 422 for any field problem (a source
            with no subword pieces, which cannot be scored, included).
    """
    body = validate_body(ScoreBody, payload, Limits(cfg, count_tokens, router=router),
                         '{"source": "...", "target": "..."}')
    assert isinstance(body, ScoreBody)
    single = body.source is not None
    return TranslateRequest(
        texts=tuple(s for _, s in body.named_sources()), n_tokens=body.n_tokens, single=single,
        split_sentences=False, task="score",
        targets=(body.target,) if single else tuple(body.targets),
        return_scores=bool(body.token_scores), model=body.route.model)


def token_counter(tok: object, lang: str) -> Callable[[str, bool], int]:
    """``(text, split) -> subwords`` with the source tokenizer ``tok`` (its ``encode``): the
    whole text, or its longest sentence (as :func:`~seq2seq.inference.documents.split_document`
    cuts it, in language ``lang``) when ``split``."""
    def count(text: str, split: bool) -> int:
        if not split:
            return len(tok.encode(text))
        return max((len(tok.encode(s)) for s in split_document(text, lang).sentences), default=0)

    return count
