"""The LibreTranslate API on the same server, so that its clients work unchanged.

LibreTranslate is the self-hosted translation service most tools can talk to (subtitle editors,
chat front-ends, help desks, RSS readers, browser extensions, the ``libretranslatepy`` client).
Its endpoints, as its own server (``libretranslate/app.py``) accepts and answers them:

* ``POST /translate`` -- a JSON body, a form (``application/x-www-form-urlencoded`` or
  ``multipart/form-data``) or query parameters: ``q`` (a string, or in JSON a list), ``source``
  (a code or ``"auto"``), ``target``, ``format`` (``text`` or ``html``: only the text of the
  markup is translated, :mod:`seq2seq.inference.html`), ``alternatives`` (a number, also as a string), ``api_key`` (or an
  ``Authorization: Bearer`` header), and, beyond LibreTranslate, ``glossary`` (in JSON an
  object of source terms to target terms). Answers ``{"translatedText": ...}`` (a string, or a list
  for a list), ``detectedLanguage`` (``{"confidence": 0-100, "language"}``, a list for a list)
  with ``source=auto``, ``alternatives`` when asked for.
* ``POST /detect`` -- ``q`` -> ``[{"confidence", "language"}, ...]``, most likely first,
  among the served languages (:mod:`serve.langid`).
* ``GET /languages`` -- ``[{"code", "name", "targets"}]`` per served source language.
* ``GET /frontend/settings`` -- the web front-end's settings (``charLimit``, ``apiKeys``, ...).
* ``POST /suggest`` and ``POST /translate_file`` -- answered as a LibreTranslate server with
  suggestions and file translation disabled (403 / 400).

Errors are ``{"error": "..."}`` with 400 (a bad request), 403 (an invalid key), 429 (a key's
limit, with ``Retry-After``), 503/504 (overload); never a 5xx for client input. A text in
``source`` language goes to the model of that pair (:class:`~serve.catalog.Catalog`); texts
without a letter or digit (empty, emoji, punctuation) come back as they are, as LibreTranslate
returns untranslatable text. This module only reads requests and shapes answers; the handler
(:mod:`serve.handlers`) queues the translation like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from seq2seq.config import ServeConfig
from serve.catalog import Catalog
from serve.langid import LanguageIdentifier, language_name
from serve.validation import RequestError, TranslateRequest, parse_body, validate_payload

FRONTEND_TIMEOUT_MS = 500


def invalid(what: str) -> RequestError:
    """LibreTranslate's wording of a bad request."""
    return RequestError(400, f"Invalid request: {what}")


async def read_params(request: Any, body: bytes, cfg: ServeConfig) -> dict[str, Any]:
    """The request's parameters, as LibreTranslate reads them: a JSON object body, or a form,
    over the query parameters.

    Raises:
        RequestError: 400 for a JSON body that is not an object or not JSON, 413 over the size
            limit.
    """
    params: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or (not ctype and body.strip().startswith(b"{")):
        data = parse_body(body, cfg)
        if not isinstance(data, dict):
            raise RequestError(400, "Invalid JSON format")
        return {**params, **data}
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data") and body:
        request._body = body  # starlette parses the form from the body already read
        try:
            form = await request.form()
        except Exception as err:  # noqa: BLE001 - any malformed form is the client's
            raise RequestError(400, f"Invalid request: the form cannot be read ({err})") \
                from None
        params.update({k: form.get(k) for k in form})  # LibreTranslate takes the first value
    return params


@dataclass
class Plan:
    """What a ``/translate`` request needs besides the model's answer.

    Attributes:
        texts: every text of ``q``.
        batch: ``q`` was a list.
        todo: indices of the texts the model translates (the others come back as they are).
        detected: ``{"confidence", "language"}`` with ``source=auto``, else None.
        alternatives: alternatives asked for.
    """

    texts: list[str]
    batch: bool
    todo: list[int]
    detected: dict[str, Any] | None
    alternatives: int


def _translatable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _texts(params: dict[str, Any], cfg: ServeConfig) -> tuple[list[str], bool]:
    q = params.get("q")
    if q is None or q == "" or q == []:
        raise invalid("missing q parameter")
    batch = isinstance(q, list)
    texts = q if batch else [q]
    if not all(isinstance(t, str) for t in texts):
        raise invalid("q must be a string or a list of strings")
    if len(texts) > cfg.max_texts:
        raise invalid(f"request ({len(texts)}) exceeds text limit ({cfg.max_texts})")
    for t in texts:
        if len(t) > cfg.max_chars:
            raise invalid(f"request ({len(t)}) exceeds text limit ({cfg.max_chars})")
    return list(texts), batch


def _code(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not value:
        raise invalid(f"missing {name} parameter")
    if not isinstance(value, str):
        raise invalid(f"{name} must be a language code")
    return value.strip().lower()


def plan_translation(params: dict[str, Any], catalog: Catalog, langid: LanguageIdentifier,
                     cfg: ServeConfig) -> tuple[Plan, TranslateRequest | None]:
    """A ``/translate`` request -> its :class:`Plan` and the model's request (None when no
    text needs the model).

    Raises:
        RequestError: 400 with LibreTranslate's wording (a missing parameter, an unsupported
            language or pair or format, a limit), 422-free: every problem is a 400.
    """
    texts, batch = _texts(params, cfg)
    source, target = _code(params, "source"), _code(params, "target")
    fmt = params.get("format") or "text"
    if fmt not in ("text", "html"):
        raise RequestError(400, f"{fmt} format is not supported")
    try:
        alternatives = max(0, int(params.get("alternatives") or 0))
    except (TypeError, ValueError):
        raise invalid("alternatives parameter is not a number") from None
    if alternatives > cfg.max_n_best - 1:
        raise invalid(f"alternatives parameter must be <= {cfg.max_n_best - 1}")
    todo = [i for i, t in enumerate(texts) if _translatable(t)]
    detected = None
    if source == "auto":
        plain = "\n".join(texts[i] for i in todo)
        found = langid.detect(re.sub(r"<[^>]*>", " ", plain) if fmt == "html" else plain)
        source = found[0][0] if found else catalog.default.spec.source
        detected = {"confidence": round(100.0 * found[0][1], 1) if found else 0.0,
                    "language": source}
    served = catalog.languages()
    if source not in served:
        raise RequestError(400, f"{source} is not supported")
    if not any(target in ts for ts in served.values()):
        raise RequestError(400, f"{target} is not supported")
    if not todo:
        return Plan(texts, batch, todo, detected, alternatives), None
    try:
        model = catalog.resolve(source=source, target=target)
        body = {"texts": [texts[i] for i in todo], "model": model.spec.id, "format": fmt}
        if params.get("glossary") is not None:  # an extension: {"source term": "target term"}
            body["glossary"] = params["glossary"]
        req = validate_payload(body, cfg, router=catalog.router())
    except RequestError as err:
        if err.message.startswith("no model translates"):
            raise RequestError(400, f"{language_name(target)} ({target}) is not available as a "
                                    f"target language from {language_name(source)} ({source})"
                               ) from None
        raise invalid(err.message.replace("'texts", "'q")) from None
    return Plan(texts, batch, todo, detected, alternatives), replace(req, alternatives=alternatives)


def answer(plan: Plan, response: dict[str, Any] | None) -> dict[str, Any]:
    """The LibreTranslate answer from the model's (``{"translations": [...]}``, None when
    nothing was translated)."""
    translated = list(plan.texts)
    alternatives: list[list[str]] = [[] for _ in plan.texts]
    for i, item in zip(plan.todo, (response or {}).get("translations", []), strict=True):
        translated[i] = item["text"]
        alternatives[i] = list(item.get("alternatives", []))
    out: dict[str, Any] = {"translatedText": translated if plan.batch else translated[0]}
    if plan.detected is not None:
        out["detectedLanguage"] = [dict(plan.detected) for _ in plan.texts] if plan.batch \
            else plan.detected
    if plan.alternatives > 0:
        out["alternatives"] = alternatives if plan.batch else alternatives[0]
    return out


def detect(params: dict[str, Any], langid: LanguageIdentifier) -> list[dict[str, Any]]:
    """``POST /detect``: the served languages ``q`` may be in, most likely first.

    Raises:
        RequestError: 400 without ``q``.
    """
    q = params.get("q")
    if not q:
        raise invalid("missing q parameter")
    text = "\n".join(q) if isinstance(q, list) and all(isinstance(t, str) for t in q) else q
    if not isinstance(text, str):
        raise invalid("q must be a string or a list of strings")
    found = langid.detect(text)
    if not found:
        return [{"confidence": 0.0, "language": "en"}]  # LibreTranslate's answer for no text
    return [{"confidence": round(100.0 * c, 1), "language": code} for code, c in found]


def languages(catalog: Catalog) -> list[dict[str, Any]]:
    """``GET /languages``: each served source language and its targets."""
    return [{"code": src, "name": language_name(src), "targets": targets}
            for src, targets in catalog.languages().items()]


def frontend_settings(catalog: Catalog, cfg: ServeConfig, keys_required: bool) -> dict[str, Any]:
    """``GET /frontend/settings``."""
    target = catalog.default.spec.target
    return {
        "charLimit": cfg.max_chars,
        "frontendTimeout": FRONTEND_TIMEOUT_MS,
        "apiKeys": keys_required,
        "keyRequired": keys_required,
        "suggestions": False,
        "filesTranslation": False,
        "supportedFilesFormat": [],
        "language": {"source": {"code": "auto", "name": "Auto Detect"},
                     "target": {"code": target, "name": language_name(target)}},
    }


__all__ = ["Plan", "answer", "detect", "frontend_settings", "invalid", "languages",
           "plan_translation", "read_params"]
