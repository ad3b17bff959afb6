"""An imported checkpoint written as a reid run folder, so every tool that takes a run takes it.

``<out>/.hydra/config.yaml`` is a composed training config (the run's architecture spelled out in
``backbone.config``, ``backbone.pretrained: null``, so nothing but the folder is needed to rebuild the model) and
``<out>/checkpoints/ckpt_stage2_eNNNN.pt`` holds the weights in reid's names with what a state dict cannot say
(``model_spec``: identities, cameras and views of the SIE table) and where they came from (``imported``). Tensors
the reid model has no place for are kept under ``aside`` so that an export gives the original file back.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from reid.engine.checkpoint import atomic_save, checkpoint_name

CONFIG_FILE = Path(".hydra") / "config.yaml"


class RunFolderError(FileExistsError):
    """The output folder already holds something and overwriting was not asked for."""


def write_run_folder(
    out_dir: str | Path,
    config_yaml: str,
    system: Mapping[str, torch.Tensor],
    model_spec: Mapping[str, int],
    imported: Mapping[str, Any],
    aside: Mapping[str, torch.Tensor] | None = None,
    epoch: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write the folder (``config_yaml``: the composed config as YAML); returns the checkpoint's path. Refuses a
    non-empty folder unless ``overwrite``."""
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RunFolderError(f"{out} is not empty; choose a new folder or pass --overwrite")
    (out / CONFIG_FILE).parent.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(config_yaml, encoding="utf-8")
    path = out / "checkpoints" / checkpoint_name("stage2", epoch)
    atomic_save(
        {
            "system": dict(system), "stage": "stage2", "epoch": epoch, "batch": 0, "complete": True,
            "model_spec": dict(model_spec), "imported": dict(imported), "aside": dict(aside or {}),
        },
        path,
    )
    return path
