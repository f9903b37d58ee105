"""Fine-tuning: start a run from a trained bundle (``train.init_from``).

The new run takes the bundle's weights and sentencepiece models (the vocabulary is kept, so the
weights fit) and its model config; ``train.reset_optimizer``, ``train.reset_schedule`` and
``train.reset_best`` (all true by default, right for adapting to a new domain with a new dev
set) say whether the bundle's optimizer moments, learning-rate schedule and best dev score
carry over. Updates are counted from 0 again. The new run's bundles record where they came from
in ``meta.init_from`` (path, step, dev BLEU, creation time, and that bundle's own origin).

Only ``model.dropout`` may differ from the bundle (it is a training setting); any other
``model.*`` value that contradicts the bundle is an error naming the key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from seq2seq.checkpoint import load_bundle, model_config_from_bundle
from seq2seq.config import ModelConfig, TrainConfig

FREE_MODEL_KEYS = frozenset({"dropout"})  # may differ from the bundle


@dataclasses.dataclass
class InitSource:
    """A loaded ``train.init_from`` bundle.

    Attributes:
        path: the bundle file.
        bundle: the loaded bundle.
        model_cfg: the model config to train (the bundle's, with the job's dropout).
        origin: what ``meta.init_from`` records.
    """

    path: Path
    bundle: dict[str, Any]
    model_cfg: ModelConfig
    origin: dict[str, Any]


def contradictions(bundle_cfg: ModelConfig, job_cfg: ModelConfig,
                   keys: set[str] | None = None) -> list[str]:
    """``model.<key>=<job> (bundle: <value>)`` for every architecture key where they differ.

    Args:
        bundle_cfg: the bundle's model config.
        job_cfg: the job's.
        keys: only these keys (e.g. those given on the command line); None = all.
    """
    out = []
    for f in dataclasses.fields(ModelConfig):
        if f.name in FREE_MODEL_KEYS or (keys is not None and f.name not in keys):
            continue
        mine, theirs = getattr(job_cfg, f.name), getattr(bundle_cfg, f.name)
        if mine != theirs:
            out.append(f"model.{f.name}={mine} (bundle: {theirs})")
    return out


def merged_model_config(bundle_cfg: ModelConfig, job_cfg: ModelConfig,
                        given: set[str] | None = None) -> ModelConfig:
    """The bundle's model config with the job's values of the free keys (``dropout``) among
    ``given``; any other given key that contradicts the bundle is an error.

    Args:
        bundle_cfg: the bundle's model config.
        job_cfg: the job's.
        given: the keys the user set explicitly (an entry point knows which); None = all of
            them (a library user's whole config must agree with the bundle).

    Raises:
        ValueError: a given architecture key contradicts the bundle.
    """
    bad = contradictions(bundle_cfg, job_cfg, given)
    if bad:
        raise ValueError(f"{', '.join(bad)} contradicts train.init_from: the model comes from "
                         "the bundle (only model.dropout may change); drop the override")
    return dataclasses.replace(bundle_cfg, **{k: getattr(job_cfg, k) for k in FREE_MODEL_KEYS
                                              if given is None or k in given})


def load_init(t: TrainConfig, job_model: ModelConfig,
              given: set[str] | None = None) -> InitSource:
    """Load and check ``t.init_from`` for a job whose model config is ``job_model``.

    Args:
        t: the job's training options.
        job_model: the job's model config.
        given: the ``model.*`` keys set explicitly (see :func:`merged_model_config`).

    Raises:
        ValueError: the bundle cannot be loaded, contradicts ``job_model``, or lacks the
            training state that ``reset_optimizer=false``/``reset_schedule=false`` ask for.
    """
    path = Path(t.init_from)
    try:
        bundle = load_bundle(path)
    except (FileNotFoundError, ValueError) as err:
        raise ValueError(f"train.init_from: {err}") from None
    model_cfg = merged_model_config(model_config_from_bundle(bundle), job_model, given)
    ts = bundle.get("train_state")
    for key in ("reset_optimizer", "reset_schedule", "reset_best"):
        if not getattr(t, key) and ts is None:
            raise ValueError(f"train.{key}=false needs a bundle with training state (last.pt "
                             f"or step_<N>.pt); {path} has none")
    meta = dict(bundle.get("meta") or {})
    origin = {"path": str(path.resolve()), "step": int(meta.get("step") or 0),
              "dev_bleu": meta.get("dev_bleu"), "created": meta.get("created"),
              "init_from": meta.get("init_from")}
    return InitSource(path, bundle, model_cfg, origin)


__all__ = ["FREE_MODEL_KEYS", "InitSource", "contradictions", "load_init",
           "merged_model_config"]
