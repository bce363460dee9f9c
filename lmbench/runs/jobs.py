"""From a run's configuration to its jobs: every model resolved and checked, in dependency order, per seed and size.

All of it happens before any data is read, so a wrong name or parameter costs nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from ..errors import LmbenchError
from ..models.registry import ModelSpec, accepted_params, resolve
from .config import RunConfig, check_config

#: file stems longer than this are cut and made unique with a hash (file systems allow 255 bytes).
MAX_STEM = 80


@dataclass(frozen=True)
class Job:
    """One fit of a run: the label in the table, the model it instantiates, its seed and training data.

    ``fraction`` < 1 fits on the first lines of the training split only (data-size sweeps); the
    vocabulary and the scored targets stay those of the whole run.
    """

    label: str
    base_label: str
    spec: ModelSpec
    seed: int
    fraction: float = 1.0
    requires: tuple = ()


def model_specs(config: RunConfig) -> list[ModelSpec]:
    """Check the options, resolve labels and overrides and check every model's parameters (mixtures last)."""
    check_config(config)
    return dependency_order(resolve_specs(config))


def resolve_specs(config: RunConfig) -> list[ModelSpec]:
    specs = []
    for label in config.models:
        spec = resolve(label, config.params.get(label))
        shared = {k: v for k, v in config.shared_params.items()
                  if k in accepted_params(spec.cls) and k not in (config.params.get(label) or {})}
        spec = ModelSpec(spec.label, spec.cls, {**spec.params, **shared})
        try:
            spec.build().check_params()
        except LmbenchError as exc:
            raise LmbenchError(f"{label}: {exc}") from None
        specs.append(spec)
    return specs


def dependency_order(specs: list[ModelSpec]) -> list[ModelSpec]:
    """Specs ordered so that every model comes after the models it requires (stable otherwise)."""
    by_label = {s.label: s for s in specs}
    for spec in specs:
        for need in spec.build().requires():
            if need not in by_label:
                raise LmbenchError(f"{spec.label} is built from {need!r}, which is not among the models; add it, "
                                   f"e.g. models=[{need!r}, {spec.label!r}] (--models {need},{spec.label})")
    ordered, placed = [], set()
    while len(ordered) < len(specs):
        ready = [s for s in specs if s.label not in placed and set(s.build().requires()) <= placed]
        if not ready:
            raise LmbenchError(f"models require each other in a cycle: "
                               f"{', '.join(s.label for s in specs if s.label not in placed)}")
        ordered += ready
        placed |= {s.label for s in ready}
    return ordered


def expand_jobs(specs: list[ModelSpec], config: RunConfig) -> list[Job]:
    """One job per model, per training fraction (sweeps) and per seed for stochastic models.

    Labels get ``@<fraction>`` in a sweep and ``@seed<S>`` with several seeds; a model built from
    others (a mixture) uses the fits of the same fraction and seed.
    """
    seeds = list(config.seeds) if config.seeds else [config.seed]
    fractions = list(config.fractions) if config.fractions else [1.0]
    seeded: set[str] = set()
    jobs = []
    for spec in specs:
        requires = tuple(spec.build().requires())
        per_seed = len(seeds) > 1 and (spec.cls.stochastic or bool(seeded & set(requires)))
        if per_seed:
            seeded.add(spec.label)
        for fraction in fractions:
            for seed in seeds if per_seed else seeds[:1]:
                def tag(label, s=seed):
                    return label + _suffix(config, fraction, s if label in seeded else None)
                jobs.append(Job(tag(spec.label), spec.label, spec, seed, fraction, tuple(tag(r) for r in requires)))
    return jobs


def _suffix(config: RunConfig, fraction: float, seed: int | None) -> str:
    return (f"@{fraction:g}" if config.fractions else "") + (f"@seed{seed}" if seed is not None else "")


def file_stems(labels: list[str]) -> dict[str, str]:
    """A distinct, safe file name stem for every label (``g/1`` and ``g_1`` must not share files)."""
    stems, taken = {}, set()
    for label in labels:
        stem = re.sub(r"[^\w.+@-]", "_", label).lstrip(".") or "model"
        if len(stem) > MAX_STEM or stem.lower() in taken:
            stem = f"{stem[:MAX_STEM - 9]}-{hashlib.sha1(label.encode()).hexdigest()[:8]}"
        stems[label] = stem
        taken.add(stem.lower())
    return stems


def training_ids(train: np.ndarray, eos_id: int, fraction: float) -> np.ndarray:
    """The training split, or its first lines for a sweep job (cut at a line end)."""
    if fraction >= 1:
        return train
    ends = np.flatnonzero(train == eos_id)
    n_lines = max(1, round(fraction * ends.size))
    return train[: ends[n_lines - 1] + 1]
