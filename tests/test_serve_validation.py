"""Tests of serve/validation.py: body parsing and payload checks (no server, no model)."""

from __future__ import annotations

import json
import re

import pytest

from seq2seq.config import ServeConfig
from seq2seq.inference.documents import split_document
from serve.validation import (
    RequestError,
    TranslateRequest,
    max_body_bytes,
    parse_body,
    validate_payload,
    validate_score_payload,
)

CFG = ServeConfig(max_chars=40, max_tokens=6, max_texts=3, max_beam_size=8, max_n_best=4,
                  max_length=50)


def words(text: str, split: bool) -> int:
    """A stand-in subword counter: one token per word (of the longest sentence when split)."""
    if split:
        return max((len(s.split()) for s in split_document(text, "en").sentences), default=0)
    return len(text.split())


def check(payload: object, beam: int = 5) -> TranslateRequest:
    return validate_payload(payload, CFG, words, default_beam_size=beam)


def test_single_text_with_defaults():
    req = check({"text": "Hallo Welt ."})
    assert req.texts == ("Hallo Welt .",)
    assert req.n_tokens == (3,)
    assert req.single is True
    assert (req.beam_size, req.n_best, req.max_length, req.return_alignment) == (
        None, None, None, False)


def test_list_with_all_options_round_trips_to_payload():
    req = check({"texts": ["a b", "c"], "beam_size": 4, "n_best": 3, "max_length": 7,
                 "return_alignment": True, "split_sentences": False, "return_scores": True,
                 "target_prefix": ["x y", ""]})
    assert req.texts == ("a b", "c") and req.n_tokens == (2, 1) and not req.single
    assert req.to_payload() == {"texts": ["a b", "c"], "n_tokens": [2, 1], "beam_size": 4,
                                "n_best": 3, "max_length": 7, "return_alignment": True,
                                "single": False, "split_sentences": False,
                                "return_scores": True, "prefixes": ["x y", ""],
                                "task": "translate", "targets": None, "model": "",
                                "alternatives": 0, "glossary": None, "format": "text"}
    assert TranslateRequest.from_payload(req.to_payload()) == req
    # the payload is plain JSON data (it crosses a process boundary)
    assert json.loads(json.dumps(req.to_payload())) == req.to_payload()


def test_limits_are_inclusive():
    req = check({"texts": ["x" * 40, "a b c d e f", "z"], "beam_size": 8, "n_best": 4,
                 "max_length": 50})
    assert len(req.texts) == 3 and req.n_tokens[1] == 6


def test_null_options_mean_default():
    req = check({"text": "a", "beam_size": None, "n_best": None, "return_alignment": None})
    assert req.beam_size is None and req.n_best is None and req.return_alignment is False


def test_without_token_counter_the_token_limit_is_not_checked():
    req = validate_payload({"text": "a b c d e f g h"}, CFG, None)
    assert req.n_tokens == (-1,)


@pytest.mark.parametrize("payload, status, message", [
    (["a"], 400, "must be a JSON object"),
    ("text", 400, "got string"),
    ({}, 422, "exactly one of 'text'"),
    ({"text": "a", "texts": ["b"]}, 422, "exactly one of 'text'"),
    ({"txt": "a"}, 422, "unknown field(s) ['txt']"),
    ({"text": 5}, 422, "'text' must be a string, got number"),
    ({"text": None}, 422, "'text' must be a string, got null"),
    ({"text": ""}, 422, "'text' is empty"),
    ({"text": " \n\t"}, 422, "'text' is empty"),
    ({"text": "x" * 41}, 422, "'text' has 41 characters; the limit is 40"),
    ({"text": "a b c d e f g"}, 422, "'text': a sentence has 7 subword tokens; the limit is 6"),
    ({"text": "a b c. d e f g.", "split_sentences": False}, 422,
     "'text' has 7 subword tokens; the limit is 6"),
    ({"text": "a", "split_sentences": 1}, 422, "'split_sentences' must be true or false"),
    ({"text": "a\ud800b"}, 422, "unpaired UTF-16 surrogate"),
    ({"texts": "a"}, 422, "'texts' must be a list of strings, got string"),
    ({"texts": []}, 422, "'texts' is an empty list"),
    ({"texts": ["a", "b", "c", "d"]}, 422, "'texts' has 4 items; the limit is 3"),
    ({"texts": ["a", 3]}, 422, "'texts[1]' must be a string, got number"),
    ({"texts": ["a", ""]}, 422, "'texts[1]' is empty"),
    ({"texts": ["a", "a b c d e f g"]}, 422, "'texts[1]': a sentence has 7 subword tokens"),
    ({"text": "a", "beam_size": 0}, 422, "'beam_size' must be between 1 and 8, got 0"),
    ({"text": "a", "beam_size": 9}, 422, "'beam_size' must be between 1 and 8, got 9"),
    ({"text": "a", "beam_size": 2.5}, 422, "'beam_size' must be an integer, got number"),
    ({"text": "a", "beam_size": "5"}, 422, "'beam_size' must be an integer, got string"),
    ({"text": "a", "beam_size": True}, 422, "'beam_size' must be an integer, got boolean"),
    ({"text": "a", "n_best": 5}, 422, "'n_best' must be between 1 and 4, got 5"),
    ({"text": "a", "beam_size": 2, "n_best": 3}, 422, "'n_best' (3) must not exceed the beam"),
    ({"text": "a", "max_length": 51}, 422, "'max_length' must be between 1 and 50, got 51"),
    ({"text": "a", "max_length": -1}, 422, "'max_length' must be between 1 and 50"),
    ({"text": "a", "return_alignment": "yes"}, 422, "'return_alignment' must be true or false"),
    ({"text": "a", "return_alignment": 1}, 422, "'return_alignment' must be true or false"),
])
def test_bad_payloads_name_the_problem(payload, status, message):
    with pytest.raises(RequestError) as info:
        check(payload)
    assert info.value.status == status
    assert message in info.value.message


def test_n_best_is_checked_against_the_server_default_beam():
    assert check({"text": "a", "n_best": 3}, beam=3).n_best == 3
    with pytest.raises(RequestError, match=r"'n_best' \(3\) must not exceed the beam size \(1\)"):
        check({"text": "a", "n_best": 3}, beam=1)


def test_parse_body_accepts_utf8_json():
    assert parse_body('{"text": "Grüße"}'.encode(), CFG) == {"text": "Grüße"}


@pytest.mark.parametrize("body, status, message", [
    (b"", 400, "request body is empty"),
    (b"  \n", 400, "request body is empty"),
    (b'{"text": "\xff\xfe"}', 400, "not valid UTF-8 (byte 0xff at offset 10)"),
    ('{"text": "Grüße"}'.encode("latin-1"), 400, "not valid UTF-8 (byte 0xfc at offset 12)"),
    (b'{"text": ', 400, "not valid JSON: Expecting value (line 1, column 10)"),
    (b"{'text': 'a'}", 400, "not valid JSON"),
    (b'{"beam_size": ' + b"9" * 5000 + b"}", 400, "not valid JSON here: Exceeds the limit"),
])
def test_parse_body_errors(body, status, message):
    with pytest.raises(RequestError) as info:
        parse_body(body, CFG)
    assert info.value.status == status
    assert message in info.value.message


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
])
def test_parse_body_rejects_deep_nesting_as_a_client_error(body):
    """Nesting deeper than Python's recursion limit is a 400, not a RecursionError (500)."""
    with pytest.raises(RequestError) as info:
        parse_body(body, ServeConfig())  # default limits: the body is within the byte limit
    assert (info.value.status, info.value.message) == (
        400, "request body is not valid JSON here: arrays or objects are nested too deeply")


def test_parse_body_rejects_oversized_bodies():
    limit = max_body_bytes(CFG)
    assert limit == 3 * (40 * 12 + 8) + 4096
    with pytest.raises(RequestError) as info:
        parse_body(b" " * (limit + 1), CFG)
    assert info.value.status == 413 and f"the limit is {limit}" in info.value.message


def test_the_token_limit_counts_per_sentence_when_splitting():
    """Two 4-word sentences pass a 6-token limit as a document, not as one segment."""
    req = check({"text": "Aa bb cc dd. Ee ff gg hh."})
    assert req.split_sentences and req.n_tokens == (4,)
    assert check({"text": "a b. c", "split_sentences": None}).split_sentences
    with pytest.raises(RequestError, match="'text' has 8 subword tokens"):
        check({"text": "Aa bb cc dd. Ee ff gg hh.", "split_sentences": False})


def test_a_target_prefix_makes_each_text_one_segment():
    req = check({"text": "Aa bb cc dd. Ee ff.", "target_prefix": "Hello"})
    assert req.prefixes == ("Hello",) and not req.split_sentences
    for body, msg in (({"texts": ["a"], "target_prefix": "x"}, "must be a list of 1 strings"),
                      ({"texts": ["a", "b"], "target_prefix": ["x"]}, "list of 2 strings"),
                      ({"text": "a", "target_prefix": 3}, "'target_prefix' must be a string"),
                      ({"texts": ["a"], "target_prefix": [None]},
                       "'target_prefix[0]' must be a string, got null"),
                      ({"text": "a", "target_prefix": "x" * 41}, "has 41 characters"),
                      ({"text": "a", "return_scores": "yes"}, "'return_scores' must be true")):
        with pytest.raises(RequestError, match=re.escape(msg)):
            check(body)


def test_score_payloads():
    req = validate_score_payload({"sources": ["a b", "c"], "targets": ["x", ""],
                                  "token_scores": True}, CFG, words)
    assert req.task == "score" and req.texts == ("a b", "c") and req.targets == ("x", "")
    assert req.n_tokens == (2, 1) and req.return_scores and not req.split_sentences
    assert TranslateRequest.from_payload(req.to_payload()) == req
    one = validate_score_payload({"source": "a", "target": "b"}, CFG, words)
    assert one.single and one.targets == ("b",) and not one.return_scores
    for body, status, msg in (
        ([1], 400, "request body must be a JSON object"),
        ({"source": "a"}, 422, "give both 'source' and 'target'"),
        ({"source": "a", "sources": ["b"]}, 422, "give 'source' and 'target' (strings) or"),
        ({"sources": "a", "targets": ["b"]}, 422, "'sources' must be a non-empty list"),
        ({"sources": ["a"] * 4, "targets": ["b"] * 4}, 422, "the limit is 3 per request"),
        ({"source": "a b c d e f g", "target": "x"}, 422, "has 7 subword tokens; the limit is 6"),
        ({"source": "a", "target": "x" * 41}, 422, "'target' has 41 characters"),
        ({"source": "a", "target": "x", "n_best": 2}, 422, "unknown field(s) ['n_best']"),
        ({"source": "a", "target": "x", "token_scores": 1}, 422, "'token_scores' must be true"),
    ):
        with pytest.raises(RequestError) as info:
            validate_score_payload(body, CFG, words)
        assert info.value.status == status and msg in info.value.message
    with pytest.raises(RequestError, match="'sources\\[1\\]' has no subword pieces"):
        validate_score_payload({"sources": ["a", "b"], "targets": ["x", "y"]}, CFG,
                               lambda t, split: 0 if t == "b" else 1)
