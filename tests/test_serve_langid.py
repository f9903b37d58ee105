"""Tests for serve/langid.py: language identification among the served languages (lingua)."""

from __future__ import annotations

from serve.langid import LanguageIdentifier, language_name


def test_detects_among_the_served_languages_only() -> None:
    lid = LanguageIdentifier(["de", "en", "de"])
    (top, p), (other, q) = lid.detect("Im Anfang schuf Gott die Himmel und die Erde.")
    assert (top, other) == ("de", "en") and p > 0.9 and abs(p + q - 1.0) < 1e-6
    assert lid.detect("In the beginning God created the heavens and the earth.")[0][0] == "en"
    # French text is still one of the candidates: the server serves nothing else
    assert {c for c, _ in lid.detect("Au commencement Dieu créa le ciel et la terre.")} == \
        {"de", "en"}


def test_no_letters_or_one_candidate() -> None:
    assert LanguageIdentifier(["de", "en"]).detect("🙂 123 !?") == []
    assert LanguageIdentifier(["fr"]).detect("Bonjour") == [("fr", 1.0)]
    assert LanguageIdentifier(["xx", "yy"]).detect("Hallo") == []  # unknown codes


def test_language_names() -> None:
    assert [language_name(c) for c in ("de", "en", "pt", "xx")] == ["German", "English",
                                                                   "Portuguese", "xx"]
