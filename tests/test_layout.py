"""The package layout keeps its promises (docs/DESIGN.md, "Allowed dependencies"): what each
subpackage may import, Hydra and argparse only in the entry points, modules of bounded size."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "seq2seq"
LEAVES = {"config", "tokenizer", "checkpoint", "runtime", "metrics", "plots"}
ALLOWED = {  # subpackage -> seq2seq parts it may import (besides itself)
    "rnn": set(),
    "data": {"tokenizer"},
    "model": {"rnn", "config", "tokenizer", "checkpoint"},
    "search": {"config", "tokenizer"},
    "inference": {"model", "search", "data", "checkpoint", "runtime", "config", "tokenizer"},
    "training": {"model", "search", "data", "inference"} | LEAVES,
    "cli": None,  # anything
}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported anywhere in ``path`` (function-level imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _seq2seq_parts(names: set[str]) -> set[str]:
    return {n.split(".")[1] for n in names if n.startswith("seq2seq.")}


@pytest.mark.parametrize("sub", sorted(ALLOWED))
def test_subpackages_import_only_what_the_design_allows(sub: str) -> None:
    allowed = ALLOWED[sub]
    if allowed is None:
        return
    for path in sorted((PACKAGE / sub).rglob("*.py")):
        names = _imports(path)
        bad = _seq2seq_parts(names) - allowed - {sub}
        assert not bad, f"{path.relative_to(ROOT)} imports seq2seq.{sorted(bad)}"
        if sub == "rnn":
            third_party = {n.split(".")[0] for n in names} - {"torch", "__future__"}
            assert third_party <= {"collections", "dataclasses", "math", "threading", "typing",
                                   "contextlib", "functools", "os", "weakref"}, third_party


def test_search_never_imports_the_model() -> None:
    for path in (PACKAGE / "search").rglob("*.py"):
        assert "model" not in _seq2seq_parts(_imports(path)), path


def test_only_the_entry_points_import_hydra_or_argparse() -> None:
    paths = sorted([*PACKAGE.rglob("*.py"), *(ROOT / "serve").rglob("*.py")])
    assert any(p.parent.name == "serve" for p in paths)  # the walk covers the server too
    for path in paths:
        roots = {n.split(".")[0] for n in _imports(path)}
        if path.parent.name != "cli":
            assert not roots & {"hydra", "omegaconf", "argparse"}, path.relative_to(ROOT)


def test_serve_uses_the_library_only_through_inference_and_the_leaves() -> None:
    for path in (ROOT / "serve").glob("*.py"):
        bad = _seq2seq_parts(_imports(path)) - {"inference", "config", "checkpoint", "runtime"}
        assert not bad, f"{path.name} imports seq2seq.{sorted(bad)}"


def test_no_module_is_far_over_400_lines() -> None:
    sizes = {p.relative_to(ROOT): len(p.read_text(encoding="utf-8").splitlines())
             for d in (PACKAGE, ROOT / "serve") for p in d.rglob("*.py")}
    assert max(sizes.values()) > 100  # the walk found the package
    assert {p: n for p, n in sizes.items() if n > 430} == {}
