"""``seq2seq-serve``: the command line of the HTTP server (:mod:`serve.server`).

Usage (Hydra overrides, same style as the other commands)::

    seq2seq-serve checkpoint=runs/default/checkpoints/best.pt port=8001 max_batch_size=32 \\
        batch_timeout=0.02 search.beam_size=5
    seq2seq-serve checkpoint=[runs/a/checkpoints/best.pt,runs/b/checkpoints/best.pt]  # ensemble
    python -m seq2seq.cli.serve checkpoint=...                                        # the same

The command line is parsed here, so that ``serve/`` imports no Hydra (docs/DESIGN.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from serve.server import ServeJobConfig, checkpoint_list, serve

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def _to_dataclass(cfg: Any) -> ServeJobConfig:
    from omegaconf import OmegaConf

    obj = OmegaConf.to_object(cfg)
    if not isinstance(obj, ServeJobConfig):  # pragma: no cover - structured config guarantees it
        raise TypeError(f"unexpected config type {type(obj).__name__}")
    return obj


# Hydra writes no run directory or log file for a server unless asked to.
_HYDRA_DEFAULTS = ("hydra.output_subdir=null", "hydra.run.dir=.",
                   "hydra/job_logging=none", "hydra/hydra_logging=none")


def register_configs() -> None:
    """Register the schema and the primary config ``serve_job`` in Hydra's ConfigStore.

    The primary config merges ``conf/serve/default.yaml`` at the top level (so ``port=8001``,
    ``max_batch_size=1`` work as plain overrides) and ``conf/search/beam.yaml`` under ``search``
    (``search=greedy`` or ``search.beam_size=3`` to change it).
    """
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="serve_job_schema", node=ServeJobConfig)
    cs.store(name="serve_job", node={"defaults": [
        "serve_job_schema", {"serve@_global_": "default"}, {"search": "beam"}, "_self_"]})


def main() -> None:
    """Console entry point ``seq2seq-serve`` (Hydra, structured config ``ServeJobConfig``)."""
    import hydra
    from omegaconf import DictConfig

    register_configs()

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="serve_job")
    def _run(cfg: DictConfig) -> None:
        from omegaconf import OmegaConf

        if OmegaConf.is_missing(cfg, "checkpoint") or not cfg.checkpoint:
            raise SystemExit("seq2seq-serve: give the bundle to serve, e.g. "
                             "checkpoint=runs/default/checkpoints/best.pt")
        job = _to_dataclass(cfg)
        try:
            for path in checkpoint_list(job.checkpoint):
                if not Path(path).is_file():
                    raise SystemExit(f"seq2seq-serve: checkpoint {path} does not exist")
            serve(job)
        except ValueError as err:  # e.g. an unreadable API-key file: one line, no traceback
            raise SystemExit(f"seq2seq-serve: error: {err}") from None

    given = {a.split("=", 1)[0] for a in sys.argv[1:]}
    sys.argv += [d for d in _HYDRA_DEFAULTS if d.split("=", 1)[0] not in given]
    _run()


__all__ = ["main", "register_configs"]


if __name__ == "__main__":
    main()
