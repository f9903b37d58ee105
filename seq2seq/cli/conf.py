"""Where the commands' Hydra configs come from: ``conf/`` beside the package.

``seq2seq-train`` composes from the directory itself (``conf/config.yaml`` and the groups
``model/``, ``data/``, ``train/``, ``search/``). The translating commands (``seq2seq-evaluate``,
``seq2seq-translate``, ``seq2seq-score``, ``seq2seq-serve``) compose from Hydra's ConfigStore
instead, holding their schema, their primary config ``conf/<command>.yaml`` and the search
presets ``conf/search/*.yaml`` and nothing of training: so each one's ``--help`` lists the one
group it uses (``search``), while the YAML files stay the one home of the presets. Every
command spells the search options the same way: ``search=greedy``, ``search.beam_size=10``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def register_command(name: str, schema: type) -> None:
    """Put command ``name``'s configs into Hydra's ConfigStore.

    Args:
        name: the primary config, ``conf/<name>.yaml``; its defaults list names
            ``<name>_schema`` first.
        schema: the command's dataclass (registered as ``<name>_schema``).
    """
    cs = ConfigStore.instance()
    cs.store(name=f"{name}_schema", node=schema)
    for path in sorted((CONF_DIR / "search").glob("*.yaml")):
        cs.store(group="search", name=path.stem, node=OmegaConf.load(path))
    cs.store(name=name, node=OmegaConf.load(CONF_DIR / f"{name}.yaml"))


def command(name: str, schema: type) -> Callable[[Callable[[Any], None]], Callable[[], None]]:
    """``@hydra.main`` for a translating command: registers its configs, then composes
    ``name`` from the ConfigStore alone (see the module docstring)."""
    import hydra

    register_command(name, schema)
    return hydra.main(version_base="1.3", config_path=None, config_name=name)


def to_config(dcfg: Any, prog: str) -> Any:
    """Hydra's composed config -> the command's dataclass; a value out of range (the
    dataclasses check their own values) ends the command with one line naming the key and
    exit status 2, as an unknown key does."""
    import sys

    try:
        return OmegaConf.to_object(dcfg)
    except ValueError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)


def compose_command(name: str, schema: type, overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """The command's config as it would run with ``overrides`` (the dataclass ``schema``;
    for tests and tools)."""
    from hydra import compose, initialize

    register_command(name, schema)
    with initialize(version_base="1.3", config_path=None):
        cfg = compose(config_name=name, overrides=list(overrides))
    return OmegaConf.to_object(cfg)


__all__ = ["CONF_DIR", "command", "compose_command", "register_command", "to_config"]
