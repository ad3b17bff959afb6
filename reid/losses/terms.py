"""Loss terms: every loss of every stage is a (name, weight, fn) built from the config, in one registry.

A module of ``reid.losses`` registers its term with :func:`register_term`: the stage kind it belongs to, its name
(logged as ``<stage>/<name>``), the config key of its weight, the config keys of its options and which step outputs
it reads. reid.build turns the registry plus the config into an :class:`Objective` per stage; a term whose weight
is 0, or whose inputs a run cannot provide (the image-to-text term without a text side), is never computed. Adding a
loss is one function in one module here, its ``register_term`` call, and its weight key in conf/loss/baseline.yaml
(docs/extending.md). Modules of this package are found by :func:`registered_terms` without a list to edit.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

Outputs = Mapping[str, Any]
TermFn = Callable[[Outputs], "torch.Tensor | None"]  # None: the term has nothing to add this step
STAGE_KINDS = ("prompt", "image")  # CLIP-ReID's stage 1 (prompt learning); stage 2 and the baseline (image encoder)


@dataclass(frozen=True)
class TermSpec:
    """How to build one loss term; plain strings and a factory, so the registry reads no config itself."""

    stage: str                                   # a STAGE_KINDS entry
    name: str                                    # logged as <stage name>/<name>
    weight: str                                  # dotted config key of the weight, e.g. "loss.id_weight"
    make: Callable[..., TermFn]                  # make(**options) -> fn(outputs) -> scalar
    options: Mapping[str, str] = field(default_factory=dict)  # make's keyword -> dotted config key
    needs: tuple[str, ...] = ()                  # step outputs the term reads beyond the stage's own
    order: int = 100                             # position in the sum (floating-point sums depend on their order)
    summary: str = ""


_TERMS: dict[tuple[str, str], TermSpec] = {}


def register_term(spec: TermSpec) -> TermSpec:
    if spec.stage not in STAGE_KINDS:
        raise ValueError(f"term {spec.name!r}: stage must be one of {STAGE_KINDS}, got {spec.stage!r}")
    existing = _TERMS.get((spec.stage, spec.name))
    if existing is not None and existing.make is not spec.make:
        raise ValueError(f"a {spec.stage} term named {spec.name!r} is already registered ({existing.make.__module__})")
    _TERMS[(spec.stage, spec.name)] = spec
    return spec


def registered_terms(stage: str | None = None) -> list[TermSpec]:
    """Every registered term (of one stage kind), in registration order; imports this package's modules first."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):  # this package's modules, without importing it
        importlib.import_module(f"{__name__.rpartition('.')[0]}.{module.name}")
    specs = [s for s in _TERMS.values() if stage is None or s.stage == stage]
    return sorted(specs, key=lambda s: s.order)  # stable: registration order among equal positions


@dataclass(frozen=True)
class Term:
    name: str
    weight: float
    fn: TermFn


class Objective:
    """L = Σ weight·term over the active terms, in their order, in fp32 whatever the autocast dtype.

    Returns every term's value under its name, the total under ``"loss"`` and the monitors (no gradient).
    """

    def __init__(self, terms: Sequence[Term], monitors: Mapping[str, TermFn] | None = None):
        if not terms:
            raise ValueError("an objective needs at least one term with a non-zero weight")
        self.terms = list(terms)
        self.monitors = dict(monitors or {})

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.terms]

    def weight(self, name: str) -> float:
        return next((t.weight for t in self.terms if t.name == name), 0.0)

    def __call__(self, outputs: Outputs) -> dict[str, torch.Tensor]:
        labels = outputs["labels"]
        values: dict[str, torch.Tensor] = {}
        total: torch.Tensor | None = None
        # fp32 loss arithmetic even inside the step's autocast region, which would otherwise run the losses' matmuls
        # in bf16/fp16 (the triplet's |a|²+|b|²-2ab cancels: ~10% off under bf16).
        with torch.autocast(device_type=labels.device.type, enabled=False):
            for term in self.terms:
                value = term.fn(outputs)
                if value is None:
                    continue
                values[term.name] = value
                total = term.weight * value if total is None else total + term.weight * value
        if total is None:
            raise ValueError(f"no loss term produced a value this step (terms: {', '.join(self.names)})")
        values["loss"] = total
        with torch.no_grad():
            for name, fn in self.monitors.items():
                values[name] = fn(outputs)
        return values


def make_objective(
    kind: str,
    weights: Mapping[str, float],
    options: Mapping[str, Mapping[str, Any]],
    provided: Sequence[str] | set[str],
    monitors: Mapping[str, TermFn] | None = None,
) -> Objective:
    """The objective of a stage kind from plain values: each registered term with a non-zero weight whose inputs are
    ``provided``, made with its options (reid.build reads both from the config)."""
    terms = []
    for spec in registered_terms(kind):
        weight = float(weights.get(spec.name, 0.0))
        if weight != 0 and set(spec.needs) <= set(provided):
            terms.append(Term(spec.name, weight, spec.make(**options.get(spec.name, {}))))
    return Objective(terms, monitors)
