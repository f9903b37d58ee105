"""Tests for seq2seq.inference.translation: the plain-JSON view of a Translation."""

from __future__ import annotations

import json

from seq2seq.inference.glossary import TermCheck
from seq2seq.inference.translation import EOS_PIECE, Translation


def test_to_dict_is_plain_json() -> None:
    t = Translation(text="God", score=-0.5, tokens=[7], n_best=[("God", -0.5), ("Lord", -0.9)],
                    tgt_pieces=["▁God", EOS_PIECE],
                    constraints=[TermCheck("Gott", "God", True, "")])
    d = t.to_dict()
    assert d["n_best"] == [["God", -0.5], ["Lord", -0.9]]  # tuples become lists
    assert d["constraints"] == [{"source": "Gott", "target": "God", "met": True}]
    assert d["tgt_pieces"] == ["▁God", "</s>"]
    assert json.loads(json.dumps(d)) == d
    assert Translation(text="", score=0.0, tokens=[]).to_dict()["constraints"] is None
