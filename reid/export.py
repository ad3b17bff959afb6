"""`python -m reid.export run=RUN format=onnx|torchscript|clipreid`: a trained or imported run out.

``onnx`` and ``torchscript`` write the image encoder with the descriptor evaluation uses (camera / view ids as
inputs when the run has SIE) and check it against the torch model; ``clipreid`` writes the weights as CLIP-ReID's
(or, with SVLL heads, SVLL-ReID's) ``model.state_dict()``, which their ``load_param`` reads. docs/weights.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
FORMATS = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt", "clipreid": "clipreid.pth"}


class ExportError(ValueError):
    """An export that cannot be made or does not match the torch model."""


def export_run(
    run: str | Path, fmt: str, out: str | Path | None = None, *, checkpoint: str | Path | None = None,
    opset: int = 18, verify: bool = True, tolerance: float = 1e-4, root_dir: str | Path | None = None,
) -> tuple[Path, list[str]]:
    """Export ``run`` in ``fmt``; returns the written file and the lines to print."""
    import torch

    from reid.engine.checkpoint import Checkpointer
    from reid.inference import PROJECT_ROOT, load_run
    from reid.weights import export as ex

    if fmt not in FORMATS:
        raise ExportError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}")
    trained = load_run(run, checkpoint, device="cpu", root_dir=root_dir or PROJECT_ROOT)
    target = Path(out).expanduser() if out else trained.run_dir / "export" / FORMATS[fmt]
    lines = [f"[export] {trained.describe()}"]
    if fmt == "clipreid":
        _check_openai_head_rule(trained)
        state = ex.clipreid_state_dict(Checkpointer.load(trained.checkpoint))
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, target)
        lines.append(
            f"[export] wrote {target}: {len(state)} tensors in CLIP-ReID's state-dict layout (its load_param reads it)"
        )
        return target, lines
    if opset < 17:
        raise ExportError(f"opset={opset}: the exporter needs ONNX opset 17 or newer")
    camera, view = trained.model.side_info
    module = ex.Descriptor(trained.model, ex.id_inputs(camera, view))
    size = trained.input_size
    cfg = trained.config
    if fmt == "onnx":
        metadata = {
            "reid.input_size": [size[0], size[1]], "reid.input": "RGB, (pixel / 255 - mean) / std, NCHW float32",
            "reid.pixel_mean": list(cfg.backbone.pixel_mean), "reid.pixel_std": list(cfg.backbone.pixel_std),
            "reid.inputs": ["images", *module.id_names], "reid.neck_feat": str(cfg.backbone.neck_feat),
            "reid.descriptor_dim": int(trained.model.descriptor_dim), "reid.flip_average": bool(cfg.eval.flip),
            "reid.l2_normalize": bool(cfg.eval.normalize), "reid.run": str(trained.run_dir),
        }
        ex.export_onnx(module, size, target, metadata, opset=opset)
        check = ex.onnx_max_difference
    else:
        ex.export_torchscript(module, size, target)
        check = ex.torchscript_max_difference
    ids = f" + {', '.join(module.id_names)}" if module.id_names else ""
    lines.append(
        f"[export] wrote {target}: images (B, 3, {size[0]}, {size[1]}){ids} -> descriptor (B, "
        f"{trained.model.descriptor_dim})"
    )
    if verify:
        diff = check(target, module, ex.example_inputs(size, module.id_names, batch=3, seed=1))
        if diff > tolerance:
            raise ExportError(f"{target}: differs from the torch model by {diff:.3g} (> {tolerance:g}) on a test batch")
        lines.append(f"[export] checked against torch on a batch of 3: max |difference| {diff:.2e}")
    return target, lines


def _check_openai_head_rule(trained) -> None:
    """CLIP-ReID's build_model derives head counts from the weights as width // 64 (OpenAI's rule); a model with other
    head counts would load into its code without error and compute something else."""
    parts = [("image encoder", trained.model.encoder)]
    if "text" in trained.system:
        parts.append(("text encoder", trained.system["text"]))
    for what, module in parts:
        for sub in module.modules():
            heads = getattr(sub, "num_heads", None)
            width = getattr(sub, "embed_dim", None)
            if isinstance(heads, int) and isinstance(width, int) and width // 64 != heads:
                raise ExportError(
                    f"the run's {what} has {heads} attention heads of width {width}, but CLIP-ReID's code derives "
                    f"width // 64 = {width // 64} heads from the weights: its export would compute something else"
                )


@hydra.main(config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    from reid.inference import RunLoadError
    from reid.weights.clipreid_layout import LayoutError

    if not cfg.run:
        print("error: run=<run folder | checkpoint | MLflow run id> is required", file=sys.stderr)
        sys.exit(2)
    try:
        _, lines = export_run(
            cfg.run, str(cfg.format), cfg.out, checkpoint=cfg.checkpoint, opset=int(cfg.opset), verify=bool(cfg.verify),
            tolerance=float(cfg.tolerance), root_dir=cfg.paths.root_dir,
        )
    except (ExportError, RunLoadError, LayoutError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
