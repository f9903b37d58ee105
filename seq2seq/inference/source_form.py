"""What the search sees of a typed source, and how its translation is given back.

A model trained on edited sentences knows them cased and ending in a punctuation mark. Typed
input is often neither, and the :class:`~seq2seq.inference.translator.Translator` meets it
halfway before the search, then gives the translation back in the form the source came in:

* **one case** (``search.recase_input``, :mod:`seq2seq.inference.casing`): a source all in
  lowercase or all in capitals is truecased; capitals get their translation in capitals.
* **no final mark** (``search.punctuate_input``): a source that ends in a letter or digit
  (:func:`~seq2seq.data.punctuation.ends_open`: a title, a UI string, a chat message) is
  translated with the training source's usual final mark appended (the bundle's
  ``final_mark``, :func:`~seq2seq.data.punctuation.final_mark`), and its translation loses its
  final run of marks. Without it a Bible model cuts such input short or runs on
  (``Ich bin der Weg und die Wahrheit und das Leben`` -> ``I am the way and the truth,``;
  ``Gott ist Liebe`` -> ``God is love love``); with it the same model gives ``I am the way and
  the truth, and the life`` and ``God is love`` (benchmarks/README.md, "Unpunctuated input").

Neither applies to a source with a target prefix (the prefix fixes the output's form), nor in
scoring (the target is given).
"""

from __future__ import annotations

from dataclasses import dataclass

from seq2seq.data.punctuation import ends_open, strip_final_punct
from seq2seq.inference.casing import TrueCaser, recase_source


@dataclass(frozen=True)
class SourceForm:
    """A source as the search translates it, and how to give its translation back.

    Attributes:
        text: what the search translates.
        upper: the source was in capitals: the translation comes back in capitals.
        open_end: the source had no final mark (one was appended): the translation comes back
            without its final marks.
    """

    text: str
    upper: bool = False
    open_end: bool = False

    def restore(self, translation: str) -> str:
        """``translation`` in the source's form: final marks removed for an open end (unless
        nothing else would be left), then in capitals for a source in capitals.

        >>> SourceForm("Gott ist Liebe.", upper=True, open_end=True).restore("God is love.")
        'GOD IS LOVE'
        """
        if self.open_end:
            translation = strip_final_punct(translation) or translation
        return translation.upper() if self.upper else translation


def source_form(text: str, *, truecaser: TrueCaser | None = None, final_mark: str | None = None,
                recase: bool = True, punctuate: bool = True) -> SourceForm:
    """The :class:`SourceForm` of a typed source.

    Args:
        text: the source as typed.
        truecaser: the training source's word forms (the bundle's ``truecase``), or None.
        final_mark: the training source's usual final mark (the bundle's ``final_mark``), or
            None (nothing is appended).
        recase: truecase a source in one case (``search.recase_input``).
        punctuate: append ``final_mark`` to a source that ends in a letter or digit
            (``search.punctuate_input``).

    >>> source_form("gott ist liebe", truecaser=TrueCaser({"gott": "Gott", "liebe": "Liebe"}),
    ...             final_mark=".")
    SourceForm(text='Gott ist Liebe.', upper=False, open_end=True)
    """
    searched, upper = recase_source(text, truecaser) if recase else (text, False)
    open_end = punctuate and bool(final_mark) and ends_open(searched)
    if open_end:
        searched = searched.rstrip() + str(final_mark)
    return SourceForm(searched, upper, open_end)


__all__ = ["SourceForm", "source_form"]
