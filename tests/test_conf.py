"""Tests for seq2seq.cli.conf: every command spells the search options the same way and its
``--help`` lists only the config groups it uses."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from seq2seq.cli.conf import CONF_DIR, compose_command
from seq2seq.cli.evaluate import EvaluateConfig
from seq2seq.cli.score import ScoreConfig
from seq2seq.cli.translate import TranslateConfig
from seq2seq.config import SearchConfig
from serve.server import ServeJobConfig

COMMANDS = {"evaluate": EvaluateConfig, "translate": TranslateConfig, "score": ScoreConfig,
            "serve": ServeJobConfig}
PRESETS = sorted(p.stem for p in (CONF_DIR / "search").glob("*.yaml"))


def _groups(help_text: str) -> dict[str, list[str]]:
    """``{"search": ["beam", "greedy", "sampling"]}`` from Hydra's ``--help``."""
    part = help_text.split("== Configuration groups ==", 1)[1].split("== Config ==", 1)[0]
    return {m[1]: m[2].split(", ") for m in re.finditer(r"^(\w+): (.+)$", part, re.M)}


@pytest.mark.parametrize(("name", "groups"), [
    *[(c, {"search": PRESETS}) for c in COMMANDS],
    ("train", {"data": ["bible", "custom"], "model": ["default", "large"], "search": PRESETS,
               "train": ["default", "gpu"]}),
])
def test_help_lists_only_the_groups_a_command_uses(name: str, groups: dict) -> None:
    r = subprocess.run([sys.executable, "-m", f"seq2seq.cli.{name}", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"seq2seq-{name} is powered by Hydra")
    assert _groups(r.stdout) == groups


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_spells_the_search_options_the_same_way(name: str) -> None:
    schema = COMMANDS[name]
    over = ["checkpoint=x.pt", "search=greedy", "search.max_len_b=7"]
    cfg = compose_command(name, schema, over)
    assert isinstance(cfg, schema)
    assert cfg.search == SearchConfig(beam_size=1, length_penalty="none", alpha=0.0,
                                      batch_size=128, max_len_b=7)
    assert compose_command(name, schema, ["checkpoint=x.pt"]).search == SearchConfig()


def test_an_out_of_range_value_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"^search\.top_p must be in \(0, 1\], got 1\.5$"):
        compose_command("translate", TranslateConfig, ["checkpoint=x", "search.top_p=1.5"])
