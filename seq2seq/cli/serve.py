"""``seq2seq-serve``: the command line of the HTTP server (:mod:`serve.server`).

Usage (Hydra overrides, same style as the other commands)::

    seq2seq-serve checkpoint=runs/default/checkpoints/best.pt port=8001 max_batch_size=32 \\
        batch_timeout=0.02 search.beam_size=5
    seq2seq-serve checkpoint=[runs/a/checkpoints/best.pt,runs/b/checkpoints/best.pt]  # ensemble
    python -m seq2seq.cli.serve checkpoint=...                                        # the same

The command line is parsed here, so that ``serve/`` imports no Hydra (docs/DESIGN.md); its
config is ``conf/serve.yaml`` with the search presets (:mod:`seq2seq.cli.conf`).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from seq2seq.checkpoint import bundle_paths
from seq2seq.cli.conf import command, to_config
from serve.server import ServeJobConfig, serve


@command("serve", ServeJobConfig)
def main(cfg: DictConfig) -> None:
    """Console entry point ``seq2seq-serve`` (structured config ``ServeJobConfig``)."""
    if OmegaConf.is_missing(cfg, "checkpoint") or not cfg.checkpoint:
        raise SystemExit("seq2seq-serve: give the bundle to serve, e.g. "
                         "checkpoint=runs/default/checkpoints/best.pt")
    job = to_config(cfg, "seq2seq-serve")
    try:
        for path in bundle_paths(job.checkpoint):
            if not Path(path).is_file():
                raise SystemExit(f"seq2seq-serve: checkpoint {path} does not exist")
        serve(job)
    except ValueError as err:  # a bad value or an unreadable API-key file: one line
        raise SystemExit(f"seq2seq-serve: error: {err}") from None


__all__ = ["main"]


if __name__ == "__main__":
    main()
