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
    steps = {k: v for k, v in plain["pretrain"].items() if k != "world_root"}
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


def ensure_pretrained(
    backbone: DictConfig, device: torch.device, progress: bool = True, force: bool = False, max_steps: int = 0
) -> Path:
    """Return the folder of the pretrained model, pretraining it first if missing or made by another recipe.

    ``max_steps`` > 0 (smoke runs, ``debug=fast``) trains one epoch of that many steps into a separate
    ``<pretrained>-smoke`` folder, so a smoke run never overwrites (or waits for) the real model.
    """
    from reid.data.image_dataset import ImageDataset
    from reid.data.synthetic import load_captions
    from reid.models.clip_loader import load_clip
    from reid.models.tokenizer import clip_tokenizer

    out_dir = Path(backbone.pretrained)
    p = backbone.pretrain
    want = recipe(backbone)
    if max_steps:
        p = OmegaConf.merge(p, {"epochs": 1, "steps_per_epoch": int(max_steps), "warmup_epochs": 0})
        want = {**want, "epochs": 1, "steps_per_epoch": int(max_steps), "warmup_epochs": 0}
        out_dir = out_dir.with_name(out_dir.name + "-smoke")
    if not force and is_cached(out_dir, want):
        return out_dir
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
    steps_per_epoch = int(p.steps_per_epoch)
    total, warm = steps_per_epoch * int(p.epochs), steps_per_epoch * int(p.warmup_epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / max(warm, 1) if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(total - warm, 1))),
    )
    g = torch.Generator().manual_seed(int(p.seed))
    by_pid: dict[int, list[int]] = {}
    for i, pid in enumerate(pids):
        by_pid.setdefault(pid, []).append(i)
    identities = sorted(by_pid)
    dataset = ImageDataset(records, size, "bicubic")
    for epoch in range(1, int(p.epochs) + 1):
        total_loss, n = 0.0, 0
        for _ in tqdm(range(steps_per_epoch), desc=f"pretrain {epoch}/{p.epochs}", leave=False, disable=not progress):
            # one image per identity in a batch: a repeated caption would be a false negative for CLIP's loss
            chosen = torch.randperm(len(identities), generator=g)[: min(bs, len(identities))].tolist()
            index = [by_pid[identities[c]][int(torch.randint(len(by_pid[identities[c]]), (1,), generator=g))] for c in chosen]
            images = torch.stack([dataset[i]["image"] for i in index]).to(device).float().div_(255)
            flip = torch.rand(images.shape[0], generator=g) < float(p.flip_p)
            images = torch.where(flip.to(device)[:, None, None, None], images.flip(-1), images)
            # pad to the longest caption of the batch, not to 77: same result, far less text compute
            tok = tokenizer([captions[pids[i]] for i in index], padding=True, return_tensors="pt")
            out = model(input_ids=tok["input_ids"].to(device), pixel_values=(images - mean) / std, return_loss=True)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            sched.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))  # CLIP's clamp of the learned temperature
            total_loss += float(out.loss.detach())
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
    from reid.build import resolve_device

    ensure_pretrained(cfg.backbone, resolve_device(cfg.device), progress=bool(cfg.progress), force=bool(cfg.force))


if __name__ == "__main__":
    main()
