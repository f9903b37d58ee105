"""Tests for serve/catalog.py: the models file, the one-model form, routing a request to a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq.config import SearchConfig, ServeConfig
from serve.catalog import Catalog, ModelSpec, read_models_file, single_model
from serve.validation import RequestError

CFG = ServeConfig()
SEARCH = SearchConfig(beam_size=4)


def test_a_models_file_gives_specs_with_defaults_and_changes(two_models: Path,
                                                             tiny_bundle: Path) -> None:
    de_en, en_de = read_models_file(two_models, CFG, SEARCH)
    assert de_en == ModelSpec("de-en", (str(tiny_bundle),), precision=CFG.precision,
                              search=SEARCH)
    assert (en_de.id, en_de.preload, en_de.search) == ("en-de", False,
                                                       SearchConfig(beam_size=3))


def test_relative_paths_are_taken_from_the_files_directory(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    f = tmp_path / "m" / "models.yaml"
    f.write_text("models:\n  - id: x\n    checkpoint: [a.pt, /abs/b.pt]\n    source: fr\n"
                 "    target: en\n    idle_unload: 30\n", encoding="utf-8")
    (spec,) = read_models_file(f, CFG, SEARCH)
    assert spec.checkpoint == (str(tmp_path / "m" / "a.pt"), "/abs/b.pt")
    assert (spec.source, spec.target, spec.idle_unload) == ("fr", "en", 30.0)


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected a non-empty list of models"),
    ("- id: a\n  checkpoint: a.pt\n  beam: 3\n", "models[0].beam: Extra inputs are not permitted"),
    ("- id: 'a b'\n  checkpoint: a.pt\n", "models[0].id: String should match pattern"),
    ("- checkpoint: a.pt\n", "models[0].id: Field required"),
    ("- id: a\n  checkpoint: a.pt\n  idle_unload: -1\n", "models[0].idle_unload: Input should be "
                                                         "greater than or equal to 0"),
    ("- id: a\n  checkpoint: a.pt\n  search: {n_best: 9}\n",
     "models[0].search: search.n_best must be in [1, beam_size=4], got 9"),
    ("- id: a\n  checkpoint: a.pt\n  search: {beem: 2}\n", "models[0].search: "),
    ("- id: a\n  checkpoint: a.pt\n- id: a\n  checkpoint: b.pt\n", "models[1].id: 'a' is used "
                                                                   "twice"),
    ("- id: a\n  checkpoint: [a.pt\n", "not valid YAML"),
])
def test_a_bad_models_file_names_the_entry_and_the_key(tmp_path: Path, text: str,
                                                       message: str) -> None:
    f = tmp_path / "models.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as err:
        read_models_file(f, CFG, SEARCH)
    assert str(err.value).startswith(f"models={f}") and message in str(err.value)
    with pytest.raises(ValueError, match="cannot read the file"):
        read_models_file(tmp_path / "missing.yaml", CFG, SEARCH)


@pytest.fixture(scope="module")
def catalog(two_models: Path) -> Catalog:
    return Catalog(read_models_file(two_models, CFG, SEARCH))


def test_languages_come_from_the_bundles(catalog: Catalog, tiny_bundle: Path) -> None:
    assert [(s.id, s.source, s.target) for s in catalog.specs] == [("de-en", "de", "en"),
                                                                  ("en-de", "en", "de")]
    assert catalog.languages() == {"de": ["en"], "en": ["de"]}
    one = Catalog([single_model(tiny_bundle, CFG, SEARCH)])
    assert one.default.spec.id == "de-en" and one.default.info["step"] == 150
    listing = catalog.listing({"de-en"})
    assert [(m["id"], m["loaded"], m["search"]["beam_size"]) for m in listing] == [
        ("de-en", True, 4), ("en-de", False, 3)]


def test_requests_choose_by_id_or_pair_and_default_to_the_first(catalog: Catalog) -> None:
    assert catalog.resolve().spec.id == "de-en"
    assert catalog.resolve("en-de").spec.id == "en-de"
    assert catalog.resolve(source="en", target="de").spec.id == "en-de"
    assert catalog.resolve("en-de", "en", "de").spec.id == "en-de"
    route = catalog.router()(None, "en", "de")
    assert (route.model, route.default_beam_size) == ("en-de", 3)
    assert route.count("God said. And so it was.", True) > 0


@pytest.mark.parametrize(("args", "message"), [
    (("fr-en", None, None), "unknown model 'fr-en'; served: de-en (de→en), en-de (en→de)"),
    ((None, "fr", "en"), "no model translates fr→en; served: de-en (de→en), en-de (en→de)"),
    ((None, "de", None), "'src_lang' needs 'tgt_lang' too (or give 'model'); served: "),
    (("de-en", "en", None), "model 'de-en' translates de→en, not 'src_lang'='en'"),
])
def test_a_model_not_served_is_a_400_that_lists_what_is(catalog: Catalog, args: tuple,
                                                        message: str) -> None:
    with pytest.raises(RequestError) as err:
        catalog.resolve(*args)
    assert err.value.status == 400 and err.value.message.startswith(message)


def test_a_missing_bundle_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"checkpoint .*nope\.pt does not exist"):
        Catalog([single_model(tmp_path / "nope.pt", CFG, SEARCH)])
