"""A trained run out: its image encoder as ONNX or TorchScript, or its weights in CLIP-ReID's own layout.

The ONNX and TorchScript graphs compute the descriptor evaluation uses (the run's ``backbone.neck_feat`` side of the
BNNecks, concat[f_last, f_proj]) from normalised images of the run's input size, plus camera / view ids when the run
has SIE. What evaluation does around the encoder is written into the ONNX metadata instead of the graph: the pixel
normalisation, the optional flip averaging (``eval.flip``) and the L2 normalisation before distances
(``eval.normalize``).
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reid.weights.clipreid_layout import from_reid

ONNX_OPSET = 18


class Descriptor(nn.Module):
    """``images`` (B, 3, H, W) normalised [, camids (B,)][, viewids (B,)] -> the evaluation descriptor (B, D)."""

    def __init__(self, model: nn.Module, id_names: Sequence[str] = ()):
        super().__init__()
        self.model = model
        self.id_names = tuple(id_names)
        self.eval()

    def forward(self, images: torch.Tensor, *ids: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.id_names, ids))
        return self.model(images, named.get("camids"), named.get("viewids"))


def id_inputs(camera: bool, view: bool) -> tuple[str, ...]:
    """The id inputs a model with this SIE needs, in order."""
    return tuple(name for name, on in (("camids", camera), ("viewids", view)) if on)


def example_inputs(
    size: tuple[int, int], id_names: Sequence[str], batch: int, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Random normalised images and small ids (0 and 1 alternating), deterministic in ``seed``."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, *size, generator=g)
    ids = tuple(torch.arange(batch, dtype=torch.int64) % 2 for _ in id_names)
    return (images, *ids)


def export_onnx(
    module: Descriptor, size: tuple[int, int], path: str | Path, metadata: Mapping[str, Any], opset: int = ONNX_OPSET,
) -> Path:
    """Write the descriptor graph with a dynamic batch axis and ``metadata`` as the model's metadata_props."""
    import logging

    import onnx

    # torch.onnx logs one line per torchvision operator it cannot register (torchvision is not used here)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    args = example_inputs(size, module.id_names, batch=2)
    batch = torch.export.Dim("batch", min=1)
    names = ["images", *module.id_names]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", message=".*axis name.*")  # every input shares the one batch axis
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch.export's own deprecations, not ours
        torch.onnx.export(
            module, args, str(path), input_names=names, output_names=["descriptor"],
            # forward(images, *ids): the varargs are one more input, a tuple, when there are any
            dynamic_shapes=({0: batch}, *((tuple({0: batch} for _ in module.id_names),) if module.id_names else ())),
            opset_version=opset, dynamo=True, verbose=False,
        )
    model = onnx.load(str(path))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.save(model, str(path))
    return path


def onnx_max_difference(path: str | Path, module: Descriptor, inputs: Sequence[torch.Tensor]) -> float:
    """Max |onnxruntime - torch| of the descriptor on ``inputs``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
    (ours,) = session.run(["descriptor"], feed)
    with torch.no_grad():
        ref = module(*inputs).numpy()
    return float(np.abs(ours - ref).max())


def export_torchscript(module: Descriptor, size: tuple[int, int], path: str | Path) -> Path:
    """Trace the descriptor graph (shapes other than the batch are fixed by the run's input size)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(module, example_inputs(size, module.id_names, batch=2), check_trace=False)
    traced.save(str(path))
    return path


def torchscript_max_difference(path: str | Path, module: Descriptor, inputs: Sequence[torch.Tensor]) -> float:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=DeprecationWarning)
        loaded = torch.jit.load(str(path))
    with torch.no_grad():
        return float((loaded(*inputs) - module(*inputs)).abs().max())


def clipreid_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A reid checkpoint's weights in CLIP-ReID's (SVLL-ReID's, with SSL heads) ``model.state_dict()`` layout.

    Loadable by their ``load_param``; an imported checkpoint gives back the file it came from, tensor for tensor.
    """
    return from_reid(checkpoint["system"], checkpoint.get("aside"))
