"""``seq2seq-serve``: the command line of the HTTP server (:mod:`serve.server`).

Usage (Hydra overrides, same style as the other commands)::

    seq2seq-serve checkpoint=runs/default/checkpoints/best.pt port=8001 max_batch_size=32 \\
        batch_timeout=0.02 search.beam_size=5
    seq2seq-serve checkpoint=[runs/a/checkpoints/best.pt,runs/b/checkpoints/best.pt]  # ensemble
    seq2seq-serve models=models.yaml max_loaded=2 cache_size=20000    # many models (serve/catalog.py)
    python -m seq2seq.cli.serve checkpoint=...                                        # the same

The command line is parsed here, so that ``serve/`` imports no Hydra (docs/DESIGN.md); its
config is ``conf/serve.yaml`` with the search presets (:mod:`seq2seq.cli.conf`).
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from seq2seq.cli.conf import command, to_config
from serve.server import ServeJobConfig, serve


@command("serve", ServeJobConfig)
def main(cfg: DictConfig) -> None:
    """Console entry point ``seq2seq-serve`` (structured config ``ServeJobConfig``)."""
    job = to_config(cfg, "seq2seq-serve")
    try:
        serve(job)
    except (ValueError, FileNotFoundError) as err:  # nothing to serve, a missing bundle, a bad
        print(f"seq2seq-serve: error: {err}", file=sys.stderr)  # models or keys file: one line
        sys.exit(2)


__all__ = ["main"]


if __name__ == "__main__":
    main()
