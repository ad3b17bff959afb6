"""`python -m reid.pretrain`: give the embedded tiny CLIP a meaningful vision-language pretraining.

Trains the backbone's HF ``CLIPModel`` with CLIP's own contrastive loss
(``CLIPModel(return_loss=True)``) on images of a synthetic world paired with their
identity's attribute caption, then ``save_pretrained`` (weights + tokenizer) so
``backbone.pretrained=<dir>`` loads it through the same path as
``openai/clip-vit-base-patch16``. Cached by recipe: a second call returns at once.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

RECIPE_FILE = "pretrain_recipe.json"
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def recipe(backbone: DictConfig) -> dict[str, Any]:
    """Everything that determines the pretrained weights (folders excluded)."""
    plain = OmegaConf.to_container(backbone, resolve=True)
    steps = {k: v for k, v in plain["pretrain"].items() if k not in ("world_root", "num_workers")}
    return {"model": plain["config"], **steps}


def is_cached(out_dir: Path, want: dict[str, Any]) -> bool:
    path = out_dir / RECIPE_FILE
    return path.is_file() and json.loads(path.read_text()) == want and (out_dir / "config.json").is_file()


def _caption_pairs(world_root: Path, world: dict[str, Any]):
    """(image records, original pid per image) of every identity image of the world (no junk, no distractors)."""
    from reid.data import load_dataset

    ds = load_dataset("synthetic", world_root, **world)
    records, pids = [], []
    for r in ds.train + ds.query + ds.gallery:
        original = int(Path(r.path).name.split("_")[0])  # train pids are relabelled; the file name keeps the original
        if original > 0:
            records.append(r)
            pids.append(original)
    return records, pids


def ensure_pretrained(backbone: DictConfig, device: torch.device, progress: bool = True, force: bool = False) -> Path:
    """Return ``backbone.pretrained``, pretraining it first if it is missing or was made by another recipe."""
    from reid.data.loader import build_test_loader
    from reid.data.synthetic import load_captions
    from reid.models.clip_loader import load_clip
    from reid.models.tokenizer import clip_tokenizer

    out_dir = Path(backbone.pretrained)
    want = recipe(backbone)
    if not force and is_cached(out_dir, want):
        return out_dir
    p = backbone.pretrain
    print(f"[pretrain] training {backbone.name} -> {out_dir} (once; cached by recipe)", flush=True)
    torch.manual_seed(int(p.seed))
    records, pids = _caption_pairs(Path(p.world_root), OmegaConf.to_container(p.world, resolve=True))
    captions = load_captions(Path(p.world_root) / "synthetic")
    tokenizer = clip_tokenizer()
    model = load_clip(None, OmegaConf.to_container(backbone.config, resolve=True), attn_implementation=backbone.attn_implementation)
    model.to(device).train()
    size = (int(p.image_size), int(p.image_size))
    mean = torch.tensor(list(backbone.pixel_mean), device=device).view(1, 3, 1, 1)
    std = torch.tensor(list(backbone.pixel_std), device=device).view(1, 3, 1, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(p.lr), weight_decay=float(p.weight_decay))
    bs = int(p.batch_size)
    steps_per_epoch = math.ceil(len(records) / bs)
    total, warm = steps_per_epoch * int(p.epochs), steps_per_epoch * int(p.warmup_epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / max(warm, 1) if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(total - warm, 1))),
    )
    g = torch.Generator().manual_seed(int(p.seed))
    for epoch in range(1, int(p.epochs) + 1):
        order = torch.randperm(len(records), generator=g).tolist()
        loader = build_test_loader([records[i] for i in order], size, bs, int(p.num_workers), interpolation="bicubic")
        texts = [captions[pids[i]] for i in order]
        total_loss, n = 0.0, 0
        for b, batch in enumerate(tqdm(loader, desc=f"pretrain {epoch}/{p.epochs}", leave=False, disable=not progress)):
            images = batch["image"].to(device).float().div_(255)
            flip = torch.rand(images.shape[0], generator=g) < float(p.flip_p)
            images = torch.where(flip.to(device)[:, None, None, None], images.flip(-1), images)
            # pad to the longest caption of the batch, not to 77: same result, far less text compute
            tok = tokenizer(texts[b * bs : b * bs + images.shape[0]], padding=True, return_tensors="pt")
            out = model(input_ids=tok["input_ids"].to(device), pixel_values=(images - mean) / std, return_loss=True)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            sched.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))  # CLIP's clamp of the learned temperature
            total_loss += float(out.loss)
            n += 1
        print(f"[pretrain] epoch {epoch}/{p.epochs}  clip_loss={total_loss / max(n, 1):.4f}", flush=True)
    tmp = out_dir.with_name(out_dir.name + f".partial{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / RECIPE_FILE).write_text(json.dumps(want, indent=1, sort_keys=True))
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    print(f"[pretrain] saved to {out_dir}", flush=True)
    return out_dir


@hydra.main(config_path=CONFIG_DIR, config_name="pretrain")
def main(cfg: DictConfig) -> None:
    from reid.builders import resolve_device

    ensure_pretrained(cfg.backbone, resolve_device(cfg.device), progress=bool(cfg.progress), force=bool(cfg.force))


if __name__ == "__main__":
    main()
