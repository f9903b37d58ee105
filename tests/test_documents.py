"""Tests for seq2seq.inference.documents: sentence splitting that keeps the layout exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq.config import SearchConfig
from seq2seq.inference.documents import split_document, translate_documents


def test_sentences_per_line_and_the_layout_around_them() -> None:
    text = "  Erster Satz. Dr. Müller kam am 3. Mai!  \r\n\r\nNeuer Absatz.\n"
    lay = split_document(text, "de")
    assert lay.sentences == ["Erster Satz.", "Dr. Müller kam am 3. Mai!", "Neuer Absatz."]
    assert lay.parts[0::2] == ["  ", " ", "  \r\n\r\n", "\n"]
    assert lay.rejoin(["A.", "B!", "C."]) == "  A. B!  \r\n\r\nC.\n"
    assert split_document("Das.\nZweite Zeile.", "de").sentences == ["Das.", "Zweite Zeile."]
    assert split_document("", "de").parts == [""] and split_document("\n \n", "de").sentences == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\r\t\u00a0…")) | st.characters(),
               max_size=80))
def test_split_then_rejoin_reproduces_any_text(text: str) -> None:
    lay = split_document(text, "en")
    assert "".join(lay.parts) == text
    assert lay.rejoin(lay.sentences) == text
    for s in lay.sentences:
        assert s and s == s.strip() and "\n" not in s


def test_all_sentences_of_all_documents_in_one_call() -> None:
    calls: list[list[str]] = []
    named: list[list[str]] = []

    class T:
        def __init__(self, text: str) -> None:
            self.text, self.score = text.upper(), -float(len(text))

    def translate(texts: list[str], cfg: SearchConfig, labels: list[str]) -> list[T]:
        calls.append(list(texts))
        named.append(labels)
        return [T(t) for t in texts]

    docs = translate_documents(translate, ["Eins. Zwei.\nDrei.", "", "Vier."], "de",
                               SearchConfig(), first_index=7)
    assert calls == [["Eins.", "Zwei.", "Drei.", "Vier."]]
    # warnings name the document (its line) and, where it has several, the sentence
    assert named == [["input 7, sentence 1", "input 7, sentence 2", "input 7, sentence 3",
                      "input 9"]]
    assert [d.text for d in docs] == ["EINS. ZWEI.\nDREI.", "", "VIER."]
    assert [len(d.sentences) for d in docs] == [3, 0, 1]
    assert docs[0].score == -5.0 and docs[1].score == 0.0


def test_word_pairs_shift_by_sentence_and_skip_words_the_text_lost() -> None:
    from seq2seq.inference.documents import DocumentTranslation
    from seq2seq.inference.translation import Translation

    layout = split_document("Gott ist Liebe\nAmen.", "de")
    assert layout.sentences == ["Gott ist Liebe", "Amen."]
    # sentence 1 was searched as "Gott ist Liebe." and its final " ." was given back without:
    # its pieces hold a fourth target word that the text no longer has
    first = Translation(text="God is love", score=0.0, tokens=[],
                        src_pieces=["▁Gott", "▁ist", "▁Liebe", "."],
                        tgt_pieces=["▁God", "▁is", "▁love", "▁.", "</s>"],
                        alignment=[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                   [0, 0, 0, 1]])
    second = Translation(text="Amen.", score=0.0, tokens=[], src_pieces=["▁Amen", "."],
                         tgt_pieces=["▁Amen", ".", "</s>"], alignment=[[1, 0], [0, 1], [0, 1]])
    doc = DocumentTranslation("God is love\nAmen.", [first, second], 0.0, layout)
    # the lost " ." would have aligned source word 2 to target word 3 (= "Amen." of sentence 2)
    assert doc.word_pairs() == [(0, 0), (1, 1), (2, 2), (3, 3)]
