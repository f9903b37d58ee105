"""Tests for serve/registry.py: models loaded on first use or at start, at most max_loaded at once
(least recently used out first), unloaded when idle; real bundles for the loading itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq.inference.translator import Translator
from serve.catalog import ModelSpec
from serve.registry import ModelRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _registry(max_loaded: int = 0, **spec_kw: object) -> tuple[ModelRegistry, list, Clock]:
    specs = [ModelSpec(m, (f"{m}.pt",), "x", "y", **spec_kw) for m in ("a", "b", "c")]
    loads: list[str] = []
    changes: list = []
    clock = Clock()

    def load(spec: ModelSpec) -> object:
        loads.append(spec.id)
        return object()

    reg = ModelRegistry(specs, max_loaded=max_loaded, load=load, clock=clock,
                        on_change=lambda loaded, new: changes.append((loaded, new)))
    reg.loads, reg.changes = loads, changes
    return reg, loads, clock


def test_at_most_max_loaded_and_the_least_recently_used_goes_first() -> None:
    reg, loads, _ = _registry(max_loaded=2)
    a = reg.get("a")
    reg.get("b")
    assert reg.get("a") is a and loads == ["a", "b"]  # loaded once
    reg.get("c")  # b was used least recently
    assert reg.loaded == ["a", "c"] and loads == ["a", "b", "c"]
    reg.get("b")
    assert reg.loaded == ["c", "b"]
    assert reg.changes[-2:] == [(["c"], None), (["c", "b"], "b")]
    with pytest.raises(KeyError):
        reg.get("d")


def test_preload_loads_in_order_up_to_the_bound() -> None:
    reg, loads, _ = _registry(max_loaded=2)
    reg.preload()
    assert loads == ["a", "b"] and reg.loaded == ["a", "b"]
    unbounded, loads, _ = _registry(preload=False)
    unbounded.preload()
    assert loads == []


def test_idle_models_are_unloaded() -> None:
    reg, loads, clock = _registry(idle_unload=30.0)
    reg.get("a")
    clock.now = 20.0
    reg.get("b")
    clock.now = 40.0
    reg.unload_idle()
    assert reg.loaded == ["b"]  # a idle 40 s, b 20 s
    clock.now = 50.0
    reg.unload_idle()
    assert reg.loaded == []
    reg.get("a")
    assert loads == ["a", "b", "a"]


def test_real_bundles_load_as_translators(tiny_bundle: Path, tiny_bundle_en_de: Path) -> None:
    specs = [ModelSpec("de-en", (str(tiny_bundle),), "de", "en"),
             ModelSpec("en-de", (str(tiny_bundle_en_de),), "en", "de"),
             ModelSpec("ens", (str(tiny_bundle), str(tiny_bundle)), "de", "en")]
    reg = ModelRegistry(specs, max_loaded=2)
    de_en = reg.get("de-en")
    assert isinstance(de_en, Translator) and de_en.src_lang == "de"
    assert reg.get("en-de").src_lang == "en"
    assert len(reg.get("ens").info()["ensemble"]) == 2
    assert reg.loaded == ["en-de", "ens"]
