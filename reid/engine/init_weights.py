"""``init_from``: start a training run from another run's weights (fine-tuning a released or earlier model).

Unlike ``resume`` it restores weights only (a fresh schedule, optimiser and MLflow run). The source may be trained
on another dataset: tensors whose size depends on the dataset (the identity classifiers, the per-identity prompts,
the SIE table) keep this run's fresh initialisation when their shapes differ, and the run says which. Any other
mismatch means the source has another architecture, which is an error naming the keys.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reid.engine.checkpoint import Checkpointer, list_checkpoints

# Sized by the training set: re-initialised, not an error, when the source's differ.
DATASET_SIZED = (
    "image.head.classifier.weight",
    "image.head_proj.classifier.weight",
    "prompt.cls_ctx",
    "image.encoder.sie.table",
)


class InitWeightsError(ValueError):
    """The init_from source does not fit the model this config builds."""


@dataclass
class InitReport:
    source: Path
    stage: str | None
    epoch: int | None
    loaded: int = 0
    reinitialised: list[str] = field(default_factory=list)   # dataset-sized tensors of another shape
    unused: list[str] = field(default_factory=list)          # in the source, not in this system (e.g. SSL heads)
    fresh: list[str] = field(default_factory=list)           # in this system, not in the source

    def lines(self) -> list[str]:
        out = [
            f"[init] weights from {self.source} (stage {self.stage}, epoch {self.epoch}): {self.loaded} tensors loaded"
        ]
        if self.reinitialised:
            out.append(f"[init] sized for another training set, freshly initialised: {', '.join(self.reinitialised)}")
        if self.fresh:
            out.append(f"[init] not in the source, freshly initialised: {_short(self.fresh)}")
        if self.unused:
            out.append(f"[init] in the source but not used by this config: {_short(self.unused)}")
        return out


def _short(keys: list[str], limit: int = 6) -> str:
    groups = sorted({".".join(k.split(".")[:2]) for k in keys})
    return ", ".join(groups[:limit]) + (f" ... ({len(groups)} groups)" if len(groups) > limit else "")


def resolve_source(path: str | Path) -> Path:
    """A checkpoint file, or a run folder's newest stage-2 checkpoint (its newest checkpoint of any stage else)."""
    where = Path(path).expanduser()
    if where.is_file():
        return where
    if where.is_dir():
        found = list_checkpoints(where / "checkpoints") or list_checkpoints(where)
        stage2 = [p for p in found if p.name.startswith("ckpt_stage2_")]
        if stage2 or found:
            return (stage2 or found)[-1]
        raise FileNotFoundError(f"init_from={where}: no ckpt_*.pt in {where / 'checkpoints'} or {where}")
    raise FileNotFoundError(f"init_from={where}: no such checkpoint file or run folder")


def read_source(path: str | Path) -> tuple[Path, Mapping[str, Any]]:
    """(checkpoint file, its contents) for an ``init_from`` value; a file without reid weights is an error."""
    source = resolve_source(path)
    state: Mapping[str, Any] = Checkpointer.load(source)
    if not isinstance(state, Mapping) or not isinstance(state.get("system"), Mapping):
        raise InitWeightsError(f"init_from={source}: no 'system' weights (not a reid checkpoint; import others with "
                               "python -m reid.import_weights)")
    return source, state


def covers_pretrained(state: Mapping[str, Any], uses_text: bool) -> bool:
    """Whether the source holds every part a pretrained CLIP would otherwise give (image encoder, text encoder),
    so that the backbone can be built from its architecture alone."""
    keys = state["system"].keys()
    has = lambda prefix: any(k.startswith(prefix) for k in keys)  # noqa: E731
    return has("image.encoder.") and (not uses_text or (has("text.") and has("prompt.")))


def load_initial_weights(system: nn.Module, source: Path, state: Mapping[str, Any]) -> InitReport:
    """Copy every tensor of the source whose name and shape match into ``system``; see the module docstring."""
    weights = state["system"]
    own = system.state_dict()
    report = InitReport(source=source, stage=state.get("stage"), epoch=state.get("epoch"))
    matched: dict[str, torch.Tensor] = {}
    wrong = []
    for key, value in weights.items():
        if key not in own:
            report.unused.append(key)
        elif tuple(own[key].shape) == tuple(value.shape):
            matched[key] = value
        elif key in DATASET_SIZED:
            report.reinitialised.append(f"{key} {tuple(value.shape)} -> {tuple(own[key].shape)}")
        else:
            wrong.append(f"{key} {tuple(value.shape)} (this config: {tuple(own[key].shape)})")
    if wrong:
        shown = "; ".join(wrong[:6]) + (f" ... ({len(wrong)} in all)" if len(wrong) > 6 else "")
        if any(
            w.startswith(("image.encoder.pos_embed", "image.encoder.visual.attnpool.positional_embedding"))
            for w in wrong
        ):
            shown += " (the position table follows the input size: give dataset.size the source was trained at)"
        raise InitWeightsError(
            f"init_from={source} has another architecture than this config builds: {shown}. Use the config it was "
            "trained or imported with (the importer prints the experiment= to use; backbone.stride, backbone.sie.*)"
        )
    report.fresh = [k for k in own if k not in weights and not k.endswith("num_batches_tracked")]
    system.load_state_dict(matched, strict=False)
    report.loaded = len(matched)
    return report
