"""`python -m reid.import_weights`: other codebases' weights in.

    python -m reid.import_weights clipreid CHECKPOINT OUT_DIR [--dataset NAME]   # CLIP-ReID's model.state_dict()
    python -m reid.import_weights svll CHECKPOINT OUT_DIR [--dataset NAME]       # SVLL-ReID's
    python -m reid.import_weights openai CLIP_PT OUT_DIR                          # OpenAI ViT CLIP -> HF folder

A CLIP-ReID or SVLL-ReID checkpoint becomes a reid run folder that ``reid.inference.load_run``,
``python -m reid.evaluate run=OUT_DIR``, ``python -m reid.search --run OUT_DIR`` and ``init_from=OUT_DIR`` take.
The architecture is read off the state dict's shapes and printed; what it cannot say is an option: the dataset
(input size, prompt noun, the camera x view split of an SIE table), CLIP-ReID's SIE_COE and TEST.NECK_FEAT.
docs/weights.md has the details and what was checked.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
# Datasets with CLIP-ReID presets, tried in this order when --dataset is not given (their default input sizes).
PAPER_DATASETS = ("market1501", "msmt17", "dukemtmc", "occ_duke", "veri776", "vehicleid")
SIE_MODES = ("camera", "view", "both")
DEFAULT_SIE_COE = 3.0  # CLIP-ReID's config/defaults.py MODEL.SIE_COE
_EPOCH_IN_NAME = re.compile(r"_(\d+)\.pth?$")


class WeightsImportError(ValueError):
    """A checkpoint that cannot be imported as asked; the message says what to pass or fix."""


@dataclass
class Imported:
    """What the importer wrote and found, for printing and for tests."""

    out_dir: Path
    checkpoint: Path
    dataset: str
    size: tuple[int, int]
    stride: int | None
    sie: str | None
    model_spec: dict[str, int]
    notes: list[str]
    lines: list[str]
    # the reid.train overrides that fine-tune from this run (stage 2 only: add method.stages=[stage2])
    fine_tune: list[str]


def _compose(overrides: Sequence[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(CONFIG_DIR):
        return compose("train", overrides=list(overrides))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    from reid.weights.clipreid_layout import unwrap_checkpoint

    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, or pickled objects beyond tensors
        raise WeightsImportError(
            f"checkpoint {path}: cannot be read as a torch state dict ({str(err).splitlines()[0]})"
        ) from None
    return unwrap_checkpoint(obj, str(path))


def _size_of(dataset: str) -> tuple[int, int]:
    size = _compose([f"dataset={dataset}"]).dataset.size
    return int(size[0]), int(size[1])


def _grid_rows(layout: Any, size: tuple[int, int], stride: int) -> int:
    from reid.models.rn50 import layer4_grid
    from reid.models.vit_encoder import grid_size

    gh, gw = grid_size(size, layout.patch, stride) if layout.arch == "vit" else layer4_grid(size, stride)
    return gh * gw + 1


def _strides(layout: Any, given: int | None) -> list[int]:
    if given is not None:
        return [given]
    return list(range(layout.patch, 0, -1)) if layout.arch == "vit" else [1, 2]  # rn50: layer4's last stride


def _fit(layout: Any, size: tuple[int, int], given_stride: int | None) -> list[int]:
    """The strides that give the checkpoint's grid at ``size``; the non-overlapping one wins when it fits (several
    strides near the patch size can give the same grid, and CLIP-ReID trains at the patch size or at 12 with OLP)."""
    fits = [s for s in _strides(layout, given_stride) if _grid_rows(layout, size, s) == layout.pos_rows]
    first = _strides(layout, given_stride)[0]
    return [first] if first in fits else fits


def choose_dataset_and_stride(
    layout: Any, dataset: str | None, stride: int | None
) -> tuple[str, tuple[int, int], int, str | None]:
    """(dataset, input size, stride or last stride, note): the dataset's default input size must give the table's
    grid."""
    what = "patch stride" if layout.arch == "vit" else "last stride"
    if dataset is not None:
        size = _size_of(dataset)
        fits = _fit(layout, size, stride)
        if not fits:
            tried = ", ".join(f"{s}: {_grid_rows(layout, size, s) - 1} cells" for s in _strides(layout, stride))
            raise WeightsImportError(
                f"the checkpoint's position table has {layout.pos_rows - 1} grid cells + a class token, but "
                f"dataset={dataset}'s input {size[0]}x{size[1]} gives no such grid at any {what} ({tried}); "
                "pass the --dataset the model was trained on"
            )
        if len(fits) > 1:
            raise WeightsImportError(
                f"{size[0]}x{size[1]} inputs give {layout.pos_rows - 1} cells at {what}s {fits}; pass --stride"
            )
        return dataset, size, fits[0], None
    for name in PAPER_DATASETS:
        size = _size_of(name)
        fits = _fit(layout, size, stride)
        if len(fits) == 1:
            note = (
                f"--dataset not given: assuming {name} ({size[0]}x{size[1]} inputs give the checkpoint's "
                f"{layout.pos_rows - 1}-cell grid); pass --dataset to choose another"
            )
            return name, size, fits[0], note
    raise WeightsImportError(
        f"no dataset default input size gives the checkpoint's {layout.pos_rows - 1}-cell position grid "
        f"(tried {', '.join(PAPER_DATASETS)}); pass --dataset (and --stride if needed)"
    )


def choose_sie(
    layout: Any, dataset: str, mode: str | None, cameras: int | None, views: int | None
) -> tuple[str | None, int, int]:
    """(camera | view | both | None, num_cams, num_views) for the checkpoint's SIE table on ``dataset``."""
    from reid.data.registry import format_constant

    rows = layout.sie_rows
    if not rows:
        return None, 1, 1
    c = cameras or format_constant(dataset, "NUM_CAMERAS")
    v = views or format_constant(dataset, "NUM_VIEWS", 1)
    facts = f"dataset={dataset} has {c if c else 'an unknown number of'} cameras and {v} views"
    if mode is None:
        candidates = [
            m
            for m, ok in (("camera", c == rows), ("view", v == rows), ("both", bool(c) and v > 1 and c * v == rows))
            if ok
        ]
        if len(candidates) != 1:
            why = "fits more than one reading" if candidates else "fits none of camera, view or camera x view"
            raise WeightsImportError(
                f"the SIE table (cv_embed) has {rows} rows and {facts}: that {why}; pass --sie camera|view|both "
                "(and --cameras/--views for a dataset whose counts are not known)"
            )
        mode = candidates[0]
    if mode == "camera":
        return mode, rows, 1
    if mode == "view":
        return mode, 1, rows
    if not c or c * v != rows:
        raise WeightsImportError(
            f"--sie both needs cameras x views = {rows} table rows, but {facts}; pass --cameras and --views"
        )
    return mode, int(c), int(v)


def _preset(method: str, ssl: str, dataset: str, arch: str, stride: int, sie: str | None) -> str | None:
    """The paper preset a checkpoint of this kind was trained with, if the project has one."""
    conf = Path(CONFIG_DIR) / "experiment"
    if ssl != "none":
        name = f"svll_{dataset}_vitb16"
    elif method != "clipreid":
        return None
    elif arch == "rn50":
        name = f"clipreid_{dataset}_rn50"
    else:
        name = f"clipreid_{dataset}_vitb16" + ("_sie_olp" if stride != 16 or sie else "")
    return name if (conf / f"{name}.yaml").is_file() else None


def _architecture(layout: Any) -> dict[str, Any]:
    """``backbone.config`` for the layout: the model is rebuilt from it, randomly initialised, then loaded."""
    if layout.arch == "rn50":
        return {
            "layers": list(layout.layers), "width": layout.rn50_width, "embed_dim": layout.proj_dim, "image_size": 224,
            "context_length": layout.context_length or 77, "vocab_size": 49408,
            "text_width": layout.text_width or 512, "text_layers": layout.text_layers or 1,
        }
    text_width = layout.text_width or 512
    return {
        "projection_dim": layout.proj_dim,
        "vision": {
            "hidden_size": layout.width, "intermediate_size": layout.mlp_width,
            "num_hidden_layers": layout.layers[0], "num_attention_heads": max(layout.width // 64, 1),
            "image_size": layout.patch * 14, "patch_size": layout.patch,
        },
        "text": {
            "hidden_size": text_width, "intermediate_size": layout.text_mlp_width or 4 * text_width,
            "num_hidden_layers": layout.text_layers or 1, "num_attention_heads": max(text_width // 64, 1),
            "max_position_embeddings": layout.context_length or 77, "vocab_size": 49408,
        },
    }


def import_checkpoint(
    kind: str,
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    dataset: str | None = None,
    sie_coefficient: float | None = None,
    neck_feat: str = "before",
    sie: str | None = None,
    cameras: int | None = None,
    views: int | None = None,
    stride: int | None = None,
    overwrite: bool = False,
) -> Imported:
    """Import a CLIP-ReID (``kind="clipreid"``) or SVLL-ReID (``"svll"``) checkpoint as a reid run folder."""
    from omegaconf import OmegaConf, open_dict

    from reid.inference import build_run_system
    from reid.weights.clipreid_layout import check_layout, read_layout, to_reid
    from reid.weights.run_folder import write_run_folder

    path = Path(checkpoint).expanduser().absolute()
    sd = read_checkpoint(path)
    layout = read_layout(sd, str(path))
    if kind == "clipreid" and layout.ssl != "none":
        raise WeightsImportError(
            f"{path} carries SVLL-ReID's SSL heads (image_mlp.*): import it with `python -m reid.import_weights svll`"
        )
    if kind == "svll" and layout.ssl == "none":
        raise WeightsImportError(
            f"{path} has no SVLL-ReID SSL heads (image_mlp.*): it is a CLIP-ReID checkpoint, use `clipreid`"
        )
    check_layout(sd, layout, str(path))
    notes: list[str] = []
    dataset, size, stride_, note = choose_dataset_and_stride(layout, dataset, stride)
    if note:
        notes.append(note)
    sie_rows_dropped = layout.arch == "rn50" and layout.sie_rows > 0
    if sie_rows_dropped:
        notes.append(
            f"the checkpoint carries an SIE table (cv_embed, {layout.sie_rows} rows) that CLIP-ReID's RN50 never uses: "
            "dropped from the model (kept in the checkpoint's 'aside' so an export gives it back)"
        )
        mode, num_cams, num_views = None, 1, 1
    else:
        mode, num_cams, num_views = choose_sie(layout, dataset, sie, cameras, views)
    if sie_coefficient is None:
        sie_coefficient = DEFAULT_SIE_COE
        if mode is not None:
            notes.append(
                "the SIE coefficient (CLIP-ReID's MODEL.SIE_COE) is not stored in the weights: using "
                f"{DEFAULT_SIE_COE:g}, "
                "CLIP-ReID's default; its released SIE+OLP models were trained with 1.0 (pass --sie-coefficient 1.0)"
            )
    method = "clipreid" if layout.text else "baseline"
    ssl = layout.ssl
    backbone = "vit_b16" if layout.arch == "vit" else "rn50"
    preset = _preset(method, ssl, dataset, layout.arch, stride_, mode)
    if preset:  # SVLL's presets are its SimCLR recipe; its SimSiam differs in the ssl group (and has no language term)
        base = [f"experiment={preset}", *((f"ssl={ssl}", "ssl.lang_weight=0.0") if ssl == "simsiam" else ())]
    else:
        base = [f"dataset={dataset}", f"backbone={backbone}", f"method={method}", f"ssl={ssl}"]
    cfg = _compose(base)
    with open_dict(cfg):
        b = cfg.backbone
        b.pretrained = None
        b.config = _architecture(layout)
        b.neck_feat = neck_feat
        b.sie.camera = mode in ("camera", "both")
        b.sie.view = mode in ("view", "both")
        b.sie.coefficient = float(sie_coefficient)
        if layout.arch == "vit":
            b.stride = stride_
            b.mid_depth = layout.layers[0] - 1  # CLIP-ReID's f_mid: the class token after all but the last block
        else:
            b.last_stride = stride_
        if "pretrain" in b:
            del b["pretrain"]
        cfg.dataset.size = list(size)
        cfg.task_name = "import"
    system, aside = to_reid(sd, layout)
    model_spec = {"num_classes": layout.num_ids, "num_cams": num_cams, "num_views": num_views}
    built = build_run_system(cfg, system, model_spec)
    _check_fits(built, system, path)
    imported = {
        "kind": kind, "checkpoint": str(path), "sha256": _sha256(path), "preset": preset,
        "layout": layout.describe(), "sie": mode, "sie_coefficient": float(sie_coefficient), "neck_feat": neck_feat,
    }
    container = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(container, dict)
    container["imported"] = imported
    out = Path(out_dir).expanduser().absolute()
    container.setdefault("paths", {})["output_dir"] = str(out)
    from reid.build import architecture_overrides

    fine_tune = [*base, *architecture_overrides(cfg, _compose(base)), f"init_from={out}"]
    match = _EPOCH_IN_NAME.search(path.name)
    written = write_run_folder(
        out,
        OmegaConf.to_yaml(OmegaConf.create(container)),
        system,
        model_spec,
        imported,
        aside,
        epoch=int(match.group(1)) if match else 0,
        overwrite=overwrite,
    )
    lines = _summary(
        kind, path, layout, dataset, size, stride_, mode, model_spec, sie_coefficient, neck_feat, preset, out, fine_tune
    )
    return Imported(
        out,
        written,
        dataset,
        size,
        stride_ if layout.arch == "vit" else None,
        mode,
        model_spec,
        notes,
        lines,
        fine_tune,
    )


def _check_fits(built: torch.nn.Module, system: dict[str, torch.Tensor], path: Path) -> None:
    """Every converted tensor has its place in the rebuilt model, and every place of the image model is filled."""
    from reid.weights.clipreid_layout import LayoutError

    mine = {k for k in system if not k.startswith("ssl_")}  # SSL heads are rebuilt for fine-tuning, not inference
    result = built.load_state_dict({k: system[k] for k in mine}, strict=False)
    missing = [k for k in result.missing_keys if k.startswith(("image.", "prompt.")) or k.startswith("text.")]
    if missing or result.unexpected_keys:
        raise LayoutError(
            f"{path}: converted weights do not fit the rebuilt model: missing {missing[:8]}, unexpected "
            f"{result.unexpected_keys[:8]}"
        )


def _summary(
    kind, path, layout, dataset, size, stride, mode, spec, coefficient, neck_feat, preset, out, fine_tune
) -> list[str]:
    name = {"clipreid": "CLIP-ReID", "svll": "SVLL-ReID"}[kind]
    if layout.arch == "vit":
        grid = f"stride {stride}" + (" (overlapping patches)" if stride < layout.patch else "")
        backbone = f"ViT-B/16-style ViT, {layout.layers[0]} blocks, width {layout.width}, {grid}"
    else:
        backbone = f"RN50-style ResNet, stages {'-'.join(map(str, layout.layers))}, last stride {stride}"
    dim = layout.width + layout.proj_dim
    sie = (
        "none"
        if mode is None
        else f"{mode}, {layout.sie_rows} rows ({spec['num_cams']} cameras x {spec['num_views']} views), coefficient "
             f"{coefficient:g}"
    )
    lines = [
        f"[import] {name} checkpoint {path}",
        f"  backbone:    {backbone}",
        f"  input:       {size[0]}x{size[1]} ({dataset}), position grid {layout.pos_rows - 1} cells + class token",
        f"  identities:  {layout.num_ids}",
        f"  SIE:         {sie}",
        f"  descriptor:  {dim}-d, concat[f_last, f_proj] {neck_feat} the BNNecks",
        f"  method:      {'clipreid (prompts + text encoder)' if layout.text else 'baseline (image only)'}"
        + (
            f", SVLL SSL heads: {layout.ssl} (kept for fine-tuning, unused by inference)"
            if layout.ssl != "none"
            else ""
        ),
        f"  config:      {'experiment=' + preset if preset else 'the config groups'} + the checkpoint's architecture",
        f"[import] wrote {out}",
        f"  evaluate:    python -m reid.evaluate run={out}",
        f"  search:      python -m reid.search --run {out} --query <image or folder> --gallery <folder>",
        f"  fine-tune:   python -m reid.train {' '.join(fine_tune)}",
    ]
    return lines


def import_openai(clip_pt: str | Path, out_dir: str | Path, overwrite: bool = False) -> list[str]:
    """OpenAI's ViT CLIP file (TorchScript archive or state dict) -> HF save_pretrained folder."""
    from reid.weights.openai_files import is_openai_vit, read_openai_file, save_hf_folder, vit_clip_spec

    path = Path(clip_pt).expanduser().absolute()
    if not path.is_file():
        raise FileNotFoundError(f"CLIP file {path}: no such file")
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty; choose a new folder or pass --overwrite")
    sd = read_openai_file(path)
    if not is_openai_vit(sd):
        if "visual.attnpool.positional_embedding" in sd:
            raise WeightsImportError(
                f"{path} is a CLIP ResNet: Hugging Face has no CLIP ResNet, so it stays a .pt file; "
                f"use it directly as backbone=rn50 backbone.pretrained={path}"
            )
        raise WeightsImportError(f"{path}: not an OpenAI CLIP state dict (no visual.proj / visual.conv1.weight)")
    spec = vit_clip_spec(sd)
    save_hf_folder(sd, out, source=str(path))
    v = spec["vision"]
    return [
        f"[import] OpenAI CLIP {path}",
        f"  ViT: {v['num_hidden_layers']} blocks, width {v['hidden_size']}, patch {v['patch_size']}, "
        f"{v['image_size']}px; "
        f"text: {spec['text']['num_hidden_layers']} blocks, width {spec['text']['hidden_size']}; projection "
        f"{spec['projection_dim']}",
        f"[import] wrote Hugging Face folder {out} (config.json, model.safetensors, tokenizer files)",
        f"  use it:  python -m reid.train backbone.pretrained={out} ...",
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reid.import_weights", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind, what in (("clipreid", "a CLIP-ReID model.state_dict()"), ("svll", "an SVLL-ReID model.state_dict()")):
        p = sub.add_parser(kind, help=f"{what} -> a reid run folder")
        p.add_argument("checkpoint", help=f"{what} (.pth), DDP-saved or not")
        p.add_argument("out_dir", help="the run folder to write")
        p.add_argument(
            "--dataset",
            help="the dataset it was trained on: input size, prompt noun, SIE camera x view split "
            "(default: inferred from the position grid, market1501 for 256x128)",
        )
        p.add_argument(
            "--sie-coefficient",
            type=float,
            default=None,
            help="CLIP-ReID's MODEL.SIE_COE, not stored in the weights (default 3.0; its SIE+OLP configs use 1.0)",
        )
        p.add_argument(
            "--neck-feat",
            choices=("before", "after"),
            default="before",
            help="TEST.NECK_FEAT: descriptor before or after the BNNecks (default before, as every released config)",
        )
        p.add_argument("--sie", choices=SIE_MODES, help="what the SIE table indexes, when its row count cannot tell")
        p.add_argument("--cameras", type=int, help="camera count for --sie both on a dataset without a known count")
        p.add_argument("--views", type=int, help="view count for --sie both on a dataset without a known count")
        p.add_argument("--stride", type=int, help="ViT patch stride, when the grid fits several")
        p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    p = sub.add_parser("openai", help="OpenAI's ViT CLIP .pt -> a Hugging Face folder for backbone.pretrained=")
    p.add_argument("clip_pt", help="ViT-B-16.pt (TorchScript archive) or a state dict in its layout")
    p.add_argument("out_dir", help="the folder to write")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from reid.data.errors import DatasetError
    from reid.weights.clipreid_layout import LayoutError
    from reid.weights.openai_files import OpenAIFileError

    args = _parser().parse_args(argv)
    try:
        if args.kind == "openai":
            lines = import_openai(args.clip_pt, args.out_dir, args.overwrite)
        else:
            done = import_checkpoint(
                args.kind, args.checkpoint, args.out_dir, dataset=args.dataset, sie_coefficient=args.sie_coefficient,
                neck_feat=args.neck_feat, sie=args.sie, cameras=args.cameras, views=args.views, stride=args.stride,
                overwrite=args.overwrite,
            )
            lines = [*(f"NOTE: {n}" for n in done.notes), *done.lines]
    except (WeightsImportError, LayoutError, OpenAIFileError, DatasetError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
