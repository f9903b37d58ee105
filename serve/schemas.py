"""The request bodies of ``POST /predict`` and ``POST /score`` (pydantic; their answers are in
:mod:`serve.answers`).

The request models are the validation: a body is checked by :meth:`TranslateBody.model_validate`
/ :meth:`ScoreBody.model_validate` with the server's limits as the validation context
(:class:`Limits`), and the same models give the OpenAPI documentation and the field lists.
Types are strict (JSON types, no coercion: ``"5"`` is not an integer, ``true`` is not a
number); a limit that depends on the server (characters, subword tokens, texts, beam, n-best,
length) is checked by a validator that reads the context. :mod:`serve.validation` turns the
errors into one message that names the field, the limit and the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from seq2seq.config import ServeConfig

TokenCounter = Callable[[str, bool], int]  # (text, split into sentences) -> subwords
AT_LEAST_ONE = {"minimum": 1}  # documented; the upper bound is the server's (GET /info)
MAX_GLOSSARY = 1000  # terms in one request's glossary


@dataclass(frozen=True)
class Route:
    """The model a request goes to, and what validating it needs of that model.

    Attributes:
        model: its id ("" on a server that does not route).
        count_tokens: ``(text, split) -> subwords`` with its source tokenizer (of the longest
            sentence when ``split``); None: the token limit is not checked (counts are -1).
        default_beam_size: its beam for a request that gives none (``n_best`` must not
            exceed it).
    """

    model: str = ""
    count_tokens: TokenCounter | None = None
    default_beam_size: int = 1

    def count(self, text: str, split: bool) -> int:
        """Subwords of ``text`` (-1 without a counter)."""
        return self.count_tokens(text, split) if self.count_tokens is not None else -1


Router = Callable[[str | None, str | None, str | None], Route]  # (model, src, tgt) -> Route


@dataclass(frozen=True)
class Limits:
    """The validation context: the server's limits and the model a request goes to.

    Attributes:
        cfg: the limits (``max_chars``, ``max_tokens``, ``max_texts``, ``max_beam_size``,
            ``max_n_best``, ``max_length``, ``max_request_chars``).
        count_tokens, default_beam_size: the :class:`Route` of a server with one model.
        router: ``(model, src_lang, tgt_lang) -> Route`` on a server with a model catalog
            (:meth:`serve.catalog.Catalog.router`; raises a 400 for a model it does not
            serve); None: every request takes the one route above.
    """

    cfg: ServeConfig
    count_tokens: TokenCounter | None = None
    default_beam_size: int = 1
    router: Router | None = None

    def route(self, model: str | None, src: str | None, tgt: str | None) -> Route:
        """The request's :class:`Route`."""
        if self.router is not None:
            return self.router(model, src, tgt)
        return Route("", self.count_tokens, self.default_beam_size)

    def check_total(self, texts: list[str]) -> None:
        """All texts of one request within ``max_request_chars``."""
        limit, total = self.cfg.max_request_chars, sum(len(t) for t in texts)
        if 0 < limit < total:
            raise PydanticCustomError(
                "request_chars", "the texts have {n} characters together; the limit is {limit} "
                                 "per request", {"n": total, "limit": limit})


def _limits(info: ValidationInfo) -> Limits:
    return info.context if isinstance(info.context, Limits) else Limits(ServeConfig())


def _fail(kind: str, message: str, **values: Any) -> PydanticCustomError:
    """A validation error whose message the error formatter prefixes with the field's name
    (``"is empty"`` -> ``"'texts[1]' is empty"``)."""
    return PydanticCustomError(kind, message, values)


def _text(value: str, info: ValidationInfo, allow_empty: bool = False) -> str:
    """A source or target text within the character limit, encodable as UTF-8."""
    if not value.strip() and not allow_empty:
        raise _fail("empty", "is empty")
    limit = _limits(info).cfg.max_chars
    if len(value) > limit:
        raise _fail("too_many_chars", "has {n} characters; the limit is {limit}",
                    n=len(value), limit=limit)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail("surrogate", "contains an unpaired UTF-16 surrogate") from None
    return value


def _any_text(value: str, info: ValidationInfo) -> str:
    return _text(value, info, allow_empty=True)


def _texts_limit(value: list[str], info: ValidationInfo) -> list[str]:
    limit = _limits(info).cfg.max_texts
    if len(value) > limit:
        raise _fail("too_many_texts", "has {n} items; the limit is {limit} per request",
                    n=len(value), limit=limit)
    return value


SourceText = Annotated[str, AfterValidator(_text)]
AnyText = Annotated[str, AfterValidator(_any_text)]


def _bounded(name: str) -> Callable[[int | None, ValidationInfo], int | None]:
    """An option between 1 and the server's ``ServeConfig.<name>``."""
    def check(value: int | None, info: ValidationInfo) -> int | None:
        upper = getattr(_limits(info).cfg, name)
        if value is not None and not 1 <= value <= upper:
            raise _fail("out_of_range", "must be between 1 and {upper}, got {value}",
                        upper=upper, value=value)
        return value
    return check


LANG = {"pattern": r"^[A-Za-z]{2,3}(-[A-Za-z0-9]+)?$", "max_length": 16}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    _n_tokens: tuple[int, ...] = PrivateAttr(default=())
    _route: Route = PrivateAttr(default_factory=Route)

    model: str | None = Field(None, max_length=64, description="Id of the model to use "
                              "(GET /models); default: the first served model.")
    src_lang: str | None = Field(None, description="Source language code; with `tgt_lang` "
                                 "chooses the model of that pair.", **LANG)
    tgt_lang: str | None = Field(None, description="Target language code.", **LANG)

    @property
    def n_tokens(self) -> tuple[int, ...]:
        """Subwords per text, counted while validating (-1 each without a counter)."""
        return self._n_tokens

    @property
    def route(self) -> Route:
        """The model the request goes to (set while validating)."""
        return self._route


class TranslateBody(_Body):
    """``POST /predict`` body: ``text`` or ``texts``, plus optional search options."""

    text: SourceText = Field(None, description="One source text (use this or `texts`).")
    texts: Annotated[list[SourceText], AfterValidator(_texts_limit)] = Field(
        None, description="Several source texts.")
    beam_size: Annotated[int | None, AfterValidator(_bounded("max_beam_size"))] = Field(
        None, description="Beam width (1 = greedy), at most the server's max_beam_size.",
        json_schema_extra=AT_LEAST_ONE)
    n_best: Annotated[int | None, AfterValidator(_bounded("max_n_best"))] = Field(
        None, description="Hypotheses returned per text (<= beam, <= max_n_best).",
        json_schema_extra=AT_LEAST_ONE)
    max_length: Annotated[int | None, AfterValidator(_bounded("max_length"))] = Field(
        None, description="Maximum output subwords (<= max_length).",
        json_schema_extra=AT_LEAST_ONE)
    return_alignment: bool | None = Field(None, description="Return attention rows and pieces.")
    split_sentences: bool | None = Field(
        None, description="Split each text into sentences, translate them and rejoin them with "
                          "the text's line breaks (default; false: each text is one sentence).")
    return_scores: bool | None = Field(
        None, description="Return log_prob, the target pieces and the log-prob of each.")
    target_prefix: str | list[str] | None = Field(
        None, description="Prefix the translation must start with (a list with `texts`, \"\" "
                          "for none); each text is then one segment.")
    format: Literal["text", "html", "markdown"] | None = Field(
        None, description="`text` (default), or `html` / `markdown`: only the text is "
                          "translated, the markup kept; each text is then one document.")
    glossary: dict[str, str] | None = Field(
        None, description="Source term -> target term: a text with the source term (whole "
                          "words) gets the target term verbatim (constrained beam search); "
                          "added to the model's own glossary. The answer's `constraints` say "
                          "which terms were required and met.",
        json_schema_extra={"maxProperties": MAX_GLOSSARY})

    @field_validator("glossary")
    @classmethod
    def _terms(cls, value: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        """At most :data:`MAX_GLOSSARY` terms, each within the character limit, no tab or
        line break."""
        if value is None:
            return None
        limit = _limits(info).cfg.max_chars
        problem = None
        if len(value) > MAX_GLOSSARY:
            problem = f"has {len(value)} terms; the limit is {MAX_GLOSSARY}"
        for src, tgt in value.items():
            for term in (src, tgt):
                if problem is None and (not term.strip() or len(term) > limit
                                        or any(c in term for c in "\t\r\n")):
                    problem = (f"term {term!r} is empty, longer than {limit} characters or "
                               "holds a tab or a line break")
        if problem is not None:
            raise _fail("glossary", "{detail}", detail=problem)
        return value

    @field_validator("target_prefix", mode="before")
    @classmethod
    def _prefix_items(cls, value: Any, info: ValidationInfo) -> Any:
        """Strings only, each within the character limit (named by its index)."""
        if value is None or isinstance(value, str):
            items = [] if value is None else [value]
        elif isinstance(value, list):
            items = value
        else:
            raise _fail("prefix_type", "must be a string with 'text', a list of strings with "
                                       "'texts', got {got}", got=json_type(value))
        for i, p in enumerate(items):
            where = "'target_prefix'" if isinstance(value, str) else f"'target_prefix[{i}]'"
            if not isinstance(p, str):
                raise PydanticCustomError("prefix_item", "{where} must be a string, got {got}",
                                          {"where": where, "got": json_type(p)})
            try:
                _any_text(p, info)
            except PydanticCustomError as e:
                raise PydanticCustomError(e.type, "{where} {detail}",
                                          {"where": where, "detail": e.message()}) from None
        return value

    @model_validator(mode="after")
    def _whole(self, info: ValidationInfo) -> TranslateBody:
        """One of text/texts, n-best within the beam, prefixes per text, token limits."""
        lim = _limits(info)
        self._route = route = lim.route(self.model, self.src_lang, self.tgt_lang)
        if (self.text is None) == (self.texts is None):
            raise PydanticCustomError(
                "text_or_texts", "give exactly one of 'text' (a string) or 'texts' (a list of "
                                 "strings){neither}",
                {"neither": "" if self.text is not None else "; neither was given"})
        if self.texts is not None and not self.texts:
            raise PydanticCustomError("empty_list", "'texts' is an empty list")
        beam = self.beam_size if self.beam_size is not None else route.default_beam_size
        if self.n_best is not None and self.n_best > beam:
            raise PydanticCustomError("n_best_over_beam", "'n_best' ({n}) must not exceed the "
                                      "beam size ({beam})", {"n": self.n_best, "beam": beam})
        self._check_prefix_shape()
        lim.check_total([t for _, t in self.named_texts()])
        split = self.split_sentences is not False
        counts = []
        for where, text in self.named_texts():
            n = route.count(text, split)
            if n > lim.cfg.max_tokens:
                raise PydanticCustomError(
                    "too_many_tokens", "{where}{part} has {n} subword tokens; the limit is "
                                       "{limit}", {"where": where, "part": ": a sentence" if split
                                                   else "", "n": n, "limit": lim.cfg.max_tokens})
            counts.append(n)
        self._n_tokens = tuple(counts)
        return self

    def _check_prefix_shape(self) -> None:
        raw = self.target_prefix
        if raw is None:
            return
        if self.text is not None:
            if not (isinstance(raw, str) or len(raw) == 1):
                raise PydanticCustomError("prefix_shape",
                                          "'target_prefix' must be a string with 'text'")
        elif not isinstance(raw, list) or len(raw) != len(self.texts):
            raise PydanticCustomError(
                "prefix_shape", "'target_prefix' must be a list of {n} strings (one per text; "
                                "\"\" for none), got {got}",
                {"n": len(self.texts), "got": json_type(raw) + (
                    f" of {len(raw)}" if isinstance(raw, list) else "")})

    def named_texts(self) -> list[tuple[str, str]]:
        """``(name in messages, text)`` per source text."""
        if self.text is not None:
            return [("'text'", self.text)]
        return [(f"'texts[{i}]'", t) for i, t in enumerate(self.texts)]

    @property
    def prefixes(self) -> tuple[str, ...] | None:
        """Per text a target prefix (``""`` for none), or None."""
        raw = self.target_prefix
        return None if raw is None else tuple([raw] if isinstance(raw, str) else raw)


class ScoreBody(_Body):
    """``POST /score`` body: ``source``/``target`` or ``sources``/``targets``, plus
    ``token_scores``."""

    source: SourceText = Field(None, description="One source sentence (or `sources`).")
    target: AnyText = Field(None, description="Its translation to score (may be empty).")
    sources: Annotated[list[SourceText], Field(min_length=1),
                       AfterValidator(_texts_limit)] = Field(
        None, description="Several source sentences.")
    targets: Annotated[list[AnyText], Field(min_length=1)] = Field(
        None, description="Their translations (same length).")
    token_scores: bool | None = Field(None, description="Return the log-prob of every target "
                                                        "piece.")

    @model_validator(mode="after")
    def _whole(self, info: ValidationInfo) -> ScoreBody:
        """Pairs of one form, of equal length, sources with subwords within the limit."""
        lim = _limits(info)
        self._route = route = lim.route(self.model, self.src_lang, self.tgt_lang)
        single = self.source is not None or self.target is not None
        if single == (self.sources is not None or self.targets is not None):
            raise PydanticCustomError("pair_form", "give 'source' and 'target' (strings) or "
                                                   "'sources' and 'targets' (lists of strings)")
        if single and (self.source is None or self.target is None):
            raise PydanticCustomError("pair_form", "give both 'source' and 'target'")
        if not single:
            for key in ("sources", "targets"):
                if getattr(self, key) is None:
                    raise PydanticCustomError("pair_form", "'{key}' must be a non-empty list of "
                                                           "strings, got null", {"key": key})
            if len(self.sources) != len(self.targets):
                raise PydanticCustomError("pair_count", "'sources' has {n} items but 'targets' "
                                          "has {m}", {"n": len(self.sources),
                                                      "m": len(self.targets)})
        lim.check_total([s for _, s in self.named_sources()] + (
            [self.target] if single else list(self.targets)))
        counts = []
        for where, text in self.named_sources():
            n = route.count(text, False)
            if n == 0:
                raise PydanticCustomError("no_pieces", "{where} has no subword pieces; it cannot "
                                                       "be scored", {"where": where})
            if n > lim.cfg.max_tokens:
                raise PydanticCustomError("too_many_tokens", "{where} has {n} subword tokens; "
                                          "the limit is {limit}", {"where": where, "n": n,
                                                                   "limit": lim.cfg.max_tokens})
            counts.append(n)
        self._n_tokens = tuple(counts)
        return self

    def named_sources(self) -> list[tuple[str, str]]:
        """``(name in messages, source)`` per pair."""
        if self.source is not None:
            return [("'source'", self.source)]
        return [(f"'sources[{i}]'", s) for i, s in enumerate(self.sources)]


def json_type(value: object) -> str:
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
