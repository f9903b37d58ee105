"""``seq2seq-average``: average the weights of several checkpoints into one bundle.

See :mod:`seq2seq.inference.average` for what is averaged and how.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from seq2seq.checkpoint import save_bundle
from seq2seq.inference.average import average_checkpoints, step_checkpoints


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point of ``seq2seq-average``."""
    ap = argparse.ArgumentParser(
        prog="seq2seq-average",
        description="Average the weights of checkpoint bundles (the last K step checkpoints of a "
                    "run, or an explicit list) into one bundle.")
    ap.add_argument("checkpoints", nargs="*", help="bundle files to average (instead of --run-dir)")
    ap.add_argument("--run-dir", help="run directory holding checkpoints/step_<N>.pt")
    ap.add_argument("--last", type=int, default=5,
                    help="with --run-dir: average the K highest-step checkpoints (default 5)")
    ap.add_argument("--best", action="store_true",
                    help="with --run-dir: average the best validations' checkpoints "
                         "(best_step_<N>.pt, kept by train.keep_best=N) instead")
    ap.add_argument("-o", "--output",
                    help="output bundle (default with --run-dir: checkpoints/avg_last<K>.pt)")
    args = ap.parse_args(argv)
    try:
        if bool(args.checkpoints) == bool(args.run_dir):
            ap.error("give either checkpoint files or --run-dir")
        if args.run_dir:
            if args.best:
                paths = step_checkpoints(args.run_dir, best=True)
                output = Path(args.output or paths[-1].parent / f"avg_best{len(paths)}.pt")
            else:
                if args.last < 1:
                    ap.error("--last must be >= 1")
                paths = step_checkpoints(args.run_dir)[-args.last:]
                if len(paths) < args.last:
                    print(f"seq2seq-average: only {len(paths)} step checkpoints, averaging "
                          "those", file=sys.stderr)
                output = Path(args.output or paths[-1].parent / f"avg_last{len(paths)}.pt")
        else:
            paths = [Path(p) for p in args.checkpoints]
            if not args.output:
                ap.error("-o/--output is required with explicit checkpoint files")
            output = Path(args.output)
        if output.resolve() in {p.resolve() for p in paths}:
            ap.error(f"output {output} is one of the inputs")
        bundle = average_checkpoints(paths)
        save_bundle(output, bundle)
    except (ValueError, FileNotFoundError) as err:
        print(f"seq2seq-average: error: {err}", file=sys.stderr)
        sys.exit(2)
    steps = ", ".join(str(s["step"]) for s in bundle["meta"]["averaged_from"])
    print(f"averaged {len(paths)} checkpoints (steps {steps}) -> {output}")


if __name__ == "__main__":
    main()
