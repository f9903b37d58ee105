"""The models one server serves, and which model a request means.

``seq2seq-serve checkpoint=BUNDLE`` serves one model (or one ensemble); ``seq2seq-serve
models=FILE`` serves every model of a YAML list::

    - id: de-en                         # what requests name it by ("model": "de-en")
      checkpoint: runs/de-en/checkpoints/best.pt
    - id: en-de
      checkpoint: [runs/en-de-a/best.pt, runs/en-de-b/best.pt]   # an ensemble
      source: en                        # default: the bundle's languages
      target: de
      precision: fp32                   # default: the server's precision
      search: {beam_size: 4}            # changes to the server's search options
      preload: false                    # load on first use (default: at startup)
      idle_unload: 600                  # unload after 10 idle minutes (default 0: never)
      glossary: terms.en-de.tsv         # source<TAB>target terms every request gets

Relative paths are taken from the file's directory. A request chooses a model by ``model``
(its id), or by ``src_lang`` + ``tgt_lang`` (the first listed model of that pair; the
LibreTranslate endpoints by ``source`` + ``target``); without either, the first model serves
it. A name or pair that is not served is a 400 that lists what is.

The HTTP process reads each bundle once at startup, for its description (``/models``,
``/info``), its languages and its source tokenizer (the token limit is checked before a request
is queued); the weights are loaded by the model worker (:mod:`serve.registry`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seq2seq.checkpoint import bundle_paths, load_bundle, tokenizers_from_bundle
from seq2seq.config import Precision, SearchConfig, ServeConfig, plain
from seq2seq.inference.description import describe_bundle, ensemble_meta
from seq2seq.inference.ensemble import check_same_vocabulary
from seq2seq.inference.glossary import Glossary
from serve.schemas import Route
from serve.validation import RequestError, token_counter


@dataclass(frozen=True)
class ModelSpec:
    """One served model, as configured.

    Attributes:
        id: the name requests use.
        checkpoint: its bundle path(s) (several: an ensemble).
        source, target: language codes ("" until read from the bundle).
        precision: the worker's precision for it.
        search: its default search options (requests may change some).
        preload: load when the worker starts (else on first use).
        idle_unload: seconds without a request after which it is unloaded (0 = never).
        glossary: its glossary's ``(source, target)`` terms, which requests can extend.
    """

    id: str
    checkpoint: tuple[str, ...]
    source: str = ""
    target: str = ""
    precision: Precision = Precision.fp32
    search: SearchConfig = dataclasses.field(default_factory=SearchConfig)
    preload: bool = True
    idle_unload: float = 0.0
    glossary: tuple[tuple[str, str], ...] = ()

    @property
    def pair(self) -> str:
        """``"de→en"``."""
        return f"{self.source}→{self.target}"


class _Entry(BaseModel):
    """One item of the models file, as written (validation only)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)
    checkpoint: str | list[str]
    source: str | None = Field(None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)?$")
    target: str | None = Field(None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)?$")
    precision: Precision | None = None
    search: dict[str, Any] = Field(default_factory=dict)
    preload: bool = True
    idle_unload: float = Field(0.0, ge=0)
    glossary: str | None = None


def read_models_file(path: str | os.PathLike, serve_cfg: ServeConfig,
                     search: SearchConfig) -> list[ModelSpec]:
    """The models of a models file (see the module docstring).

    Args:
        path: the YAML file: a list of entries (or ``{"models": [...]}``).
        serve_cfg: the server's options (its ``precision`` is every model's default).
        search: the server's search options (an entry's ``search`` changes them).

    Raises:
        ValueError: the file cannot be read, is not a non-empty list, an entry is invalid or an
            id repeats; the message names the file, the entry and the key.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"models={path}: cannot read the file ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"models={path}: not valid YAML ({err})") from None
    if isinstance(data, dict) and set(data) == {"models"}:
        data = data["models"]
    if not isinstance(data, list) or not data:
        raise ValueError(f"models={path}: expected a non-empty list of models "
                         "(- id: ..., checkpoint: ...)")
    specs: list[ModelSpec] = []
    for i, raw in enumerate(data):
        where = f"models={path}: models[{i}]"
        try:
            entry = _Entry.model_validate(raw)
            model_search = dataclasses.replace(search, **entry.search)
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(str(x) for x in first["loc"])
            raise ValueError(f"{where}.{key}: {first['msg']}") from None
        except (TypeError, ValueError) as err:  # an unknown or bad search option
            raise ValueError(f"{where}.search: {err}") from None
        if any(s.id == entry.id for s in specs):
            raise ValueError(f"{where}.id: {entry.id!r} is used twice")
        paths = [p if Path(p).is_absolute() else str(path.parent / p)
                 for p in ([entry.checkpoint] if isinstance(entry.checkpoint, str)
                           else entry.checkpoint)]
        terms: tuple[tuple[str, str], ...] = ()
        if entry.glossary:
            gfile = Path(entry.glossary)
            gfile = gfile if gfile.is_absolute() else path.parent / gfile
            try:
                terms = tuple(Glossary.read_tsv(gfile).entries.items())
            except ValueError as err:
                raise ValueError(f"{where}.glossary: {err}") from None
        specs.append(ModelSpec(
            id=entry.id, checkpoint=tuple(bundle_paths(paths, key=f"{where}.checkpoint")),
            source=entry.source or "", target=entry.target or "",
            precision=entry.precision or serve_cfg.precision, search=model_search,
            preload=entry.preload, idle_unload=entry.idle_unload, glossary=terms))
    return specs


def single_model(checkpoint: Any, serve_cfg: ServeConfig, search: SearchConfig) -> ModelSpec:
    """The one-model form, ``checkpoint=PATH`` (or a list: an ensemble); its id is the
    bundle's language pair (``"de-en"``), set by :class:`Catalog`."""
    return ModelSpec(id="", checkpoint=tuple(bundle_paths(checkpoint)),
                     precision=serve_cfg.precision, search=search)


@dataclass
class ServedModel:
    """A model as the HTTP process knows it.

    Attributes:
        spec: its configuration (languages filled in).
        info: its description (:func:`~seq2seq.inference.description.describe`).
        src_tok: its source tokenizer (counts subwords for the token limit).
    """

    spec: ModelSpec
    info: dict[str, Any]
    src_tok: Any

    @property
    def route(self) -> Route:
        """What validating a request for this model needs."""
        return Route(self.spec.id, token_counter(self.src_tok, self.spec.source),
                     self.spec.search.beam_size)


class Catalog:
    """The served models, read once at startup, and request routing.

    Args:
        specs: the configured models (languages may be empty: taken from their bundles).

    Raises:
        ValueError: a bundle cannot be read, or ensemble members differ in vocabulary.
    """

    def __init__(self, specs: Sequence[ModelSpec]) -> None:
        self.models: dict[str, ServedModel] = {}
        for spec in specs:
            served = self._read(spec)
            if served.spec.id in self.models:
                raise ValueError(f"model id {served.spec.id!r} is served twice")
            self.models[served.spec.id] = served

    @staticmethod
    def _read(spec: ModelSpec) -> ServedModel:
        paths = list(spec.checkpoint)
        for p in paths:
            if not Path(p).is_file():
                raise ValueError(f"checkpoint {p} does not exist")
        bundles = [load_bundle(p, map_location="cpu") for p in paths]
        toks = [tokenizers_from_bundle(b) for b in bundles]
        check_same_vocabulary(toks, paths)
        info = describe_bundle(bundles[0], paths[0])
        if len(bundles) > 1:
            info["ensemble"] = ensemble_meta([dict(b.get("meta") or {}) for b in bundles],
                                             paths)["ensemble"]
            info["parameters"] = sum(describe_bundle(b, p)["parameters"]
                                     for b, p in zip(bundles, paths, strict=True))
        source = spec.source or str(info.get("src_lang") or "")
        target = spec.target or str(info.get("tgt_lang") or "")
        ident = spec.id or (f"{source}-{target}" if source and target else "default")
        spec = dataclasses.replace(spec, id=ident, source=source, target=target)
        return ServedModel(spec, info, toks[0][0])

    @property
    def specs(self) -> list[ModelSpec]:
        """Every model's spec, in configured order (the first is the default)."""
        return [m.spec for m in self.models.values()]

    @property
    def default(self) -> ServedModel:
        """The model of a request that names none."""
        return next(iter(self.models.values()))

    def served(self) -> str:
        """``"de-en (de→en), en-de (en→de)"`` for messages."""
        return ", ".join(f"{m.spec.id} ({m.spec.pair})" for m in self.models.values())

    def resolve(self, model: str | None = None, source: str | None = None,
                target: str | None = None, field: tuple[str, str, str] = (
                    "model", "src_lang", "tgt_lang")) -> ServedModel:
        """The model a request means (see the module docstring).

        Args:
            model: a model id, or None.
            source, target: language codes, or None.
            field: the request's names of the three (for messages).

        Raises:
            RequestError: 400: an unknown id, a pair nobody serves, one language without the
                other, or an id whose languages contradict the given ones.
        """
        if (source is None) != (target is None) and model is None:
            given, missing = (field[1], field[2]) if target is None else (field[2], field[1])
            raise RequestError(400, f"'{given}' needs '{missing}' too (or give '{field[0]}'); "
                                    f"served: {self.served()}")
        if model is not None:
            found = self.models.get(model)
            if found is None:
                raise RequestError(400, f"unknown {field[0]} {model!r}; served: {self.served()}")
            for name, want, have in ((field[1], source, found.spec.source),
                                     (field[2], target, found.spec.target)):
                if want is not None and want != have:
                    raise RequestError(400, f"{field[0]} {model!r} translates {found.spec.pair}"
                                            f", not '{name}'={want!r}")
            return found
        if source is None:
            return self.default
        for m in self.models.values():
            if (m.spec.source, m.spec.target) == (source, target):
                return m
        raise RequestError(400, f"no model translates {source}→{target}; served: "
                                f"{self.served()}")

    def router(self) -> Any:
        """``(model, source, target) -> Route`` for request validation."""
        return lambda model, source, target: self.resolve(model, source, target).route

    def languages(self) -> dict[str, list[str]]:
        """Each served source language -> its target languages (configured order)."""
        out: dict[str, list[str]] = {}
        for m in self.models.values():
            targets = out.setdefault(m.spec.source, [])
            if m.spec.target not in targets:
                targets.append(m.spec.target)
        return out

    def listing(self, loaded: set[str] | None = None) -> list[dict[str, Any]]:
        """``GET /models``: each model's id, languages, search defaults and bundle facts."""
        out = []
        for m in self.models.values():
            s = m.spec
            item = {"id": s.id, "source": s.source, "target": s.target,
                    "checkpoint": list(s.checkpoint), "precision": str(s.precision),
                    "preload": s.preload, "idle_unload": s.idle_unload,
                    "glossary_terms": len(s.glossary),
                    "step": m.info.get("step"), "dev_bleu": m.info.get("dev_bleu"),
                    "search": plain(s.search)}
            if loaded is not None:
                item["loaded"] = s.id in loaded
            out.append(item)
        return out


__all__ = ["Catalog", "ModelSpec", "ServedModel", "read_models_file", "single_model"]
