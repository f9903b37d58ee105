"""Language identification for ``POST /detect`` and ``source=auto``, among the served languages.

Built on lingua (``lingua-language-detector``): maintained, accurate on short texts (a few
words, where n-gram profile detectors such as langdetect guess), its models ship in its wheel
(nothing is downloaded at run time) and it can be restricted to a set of languages, so it
never answers with a language the server does not serve. Its language names also name the
languages in ``GET /languages``.
"""

from __future__ import annotations

from collections.abc import Sequence


def _lingua_language(code: str):  # -> lingua.Language | None
    from lingua import IsoCode639_1, Language

    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code.split("-")[0]))
    except (ValueError, AttributeError):
        return None


def language_name(code: str) -> str:
    """English name of an ISO 639-1 code (``"de"`` -> ``"German"``); the code itself when
    lingua does not know it."""
    lang = _lingua_language(code)
    return lang.name.title() if lang is not None else code


class LanguageIdentifier:
    """Which of ``codes`` a text is in.

    Args:
        codes: the candidate ISO 639-1 codes (the served languages); codes lingua does not
            know cannot be detected.
    """

    def __init__(self, codes: Sequence[str]) -> None:
        self.codes: dict[object, str] = {}
        for code in dict.fromkeys(codes):
            lang = _lingua_language(code)
            if lang is not None:
                self.codes[lang] = code
        self._detector = None
        if len(self.codes) >= 2:
            from lingua import LanguageDetectorBuilder

            self._detector = (LanguageDetectorBuilder.from_languages(*self.codes)
                              .with_preloaded_language_models().build())

    def detect(self, text: str) -> list[tuple[str, float]]:
        """``[(code, confidence in [0, 1]), ...]``, most likely first (empty when nothing can
        be told: no letters, or no known candidate)."""
        if not self.codes or not any(ch.isalpha() for ch in text):
            return []
        if self._detector is None:  # one candidate: it
            return [(next(iter(self.codes.values())), 1.0)]
        values = self._detector.compute_language_confidence_values(text)
        return [(self.codes[v.language], float(v.value)) for v in values]


__all__ = ["LanguageIdentifier", "language_name"]
