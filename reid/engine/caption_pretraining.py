"""Caption pretraining of a CLIP model on a synthetic world: the embedded tiny CLIP's vision-language start.

Trains an HF ``CLIPModel`` with CLIP's own contrastive loss (``CLIPModel(return_loss=True)``) on images of a
synthetic world (``reid.data.synthetic``) paired with their identity's attribute caption, then ``save_pretrained``
(weights + tokenizer) so the folder loads through the same path as ``openai/clip-vit-base-patch16``. The result is
cached by recipe: a folder whose ``pretrain_recipe.json`` matches is returned at once.

Plain values only (a :class:`CaptionPretrainRecipe`); ``reid.build.pretrain_recipe.recipe_from_config`` makes one
from the backbone config.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from reid.data.records import ImageRecord
from reid.engine.schedules import warmup_cosine_step_factor

RECIPE_FILE = "pretrain_recipe.json"
# The recipe fields stored in RECIPE_FILE (with "model"): the cache key. pixel_mean / pixel_std and
# attn_implementation are part of the backbone's definition, not of the recipe, and were never in the key;
# keeping them out keeps existing caches valid.
_KEY_FIELDS = (
    "world", "seed", "image_size", "epochs", "steps_per_epoch", "batch_size", "lr", "weight_decay", "warmup_epochs",
    "flip_p",
)


@dataclass(frozen=True)
class CaptionPretrainRecipe:
    """Everything that determines the pretrained weights (folders and device excluded)."""

    model: Mapping[str, Any]  # the CLIP architecture (HF CLIPConfig fields: vision, text, projection_dim)
    world: Mapping[str, Any]  # the synthetic world's options (reid.data.synthetic.WorldSpec fields)
    seed: int  # model init, batch sampling and flips
    image_size: int  # square training resolution
    epochs: int
    steps_per_epoch: int
    batch_size: int  # distinct identities per batch (one image each)
    lr: float  # AdamW
    weight_decay: float
    warmup_epochs: int  # linear warmup, then cosine to 0 (per step)
    flip_p: float  # horizontal flip probability
    pixel_mean: Sequence[float]  # the backbone's normalisation
    pixel_std: Sequence[float]
    attn_implementation: str = "sdpa"

    def cache_key(self) -> dict[str, Any]:
        """The content of ``pretrain_recipe.json``: equal keys mean the cached weights are this recipe's."""
        return {"model": self.model, **{name: getattr(self, name) for name in _KEY_FIELDS}}

    def smoke(self, max_steps: int) -> CaptionPretrainRecipe:
        """One epoch of ``max_steps`` steps without warmup: smoke runs (``debug=fast``)."""
        return dataclasses.replace(self, epochs=1, steps_per_epoch=int(max_steps), warmup_epochs=0)


def is_cached(out_dir: Path, key: dict[str, Any]) -> bool:
    """True when ``out_dir`` holds a saved model made by the recipe whose cache key is ``key``."""
    path = out_dir / RECIPE_FILE
    return path.is_file() and json.loads(path.read_text()) == key and (out_dir / "config.json").is_file()


def _caption_pairs(world_root: Path, world: Mapping[str, Any]) -> tuple[list[ImageRecord], list[int], Path]:
    """(image records, original pid per image, world folder) of every identity image of the world (no junk, no
    distractors)."""
    from reid.data import load_dataset

    ds = load_dataset("synthetic", world_root, **world)
    records, pids = [], []
    for r in ds.train + ds.query + ds.gallery:
        original = int(Path(r.path).name.split("_")[0])  # train pids are relabelled; the file name keeps the original
        if original > 0:
            records.append(r)
            pids.append(original)
    return records, pids, Path(ds.meta["world_dir"])


def ensure_pretrained(
    recipe: CaptionPretrainRecipe,
    out_dir: str | os.PathLike[str],
    world_root: str | os.PathLike[str],
    device: torch.device | str,
    progress: bool = True,
    force: bool = False,
    max_steps: int = 0,
) -> Path:
    """Return the folder of the pretrained model, pretraining it first if missing or made by another recipe.

    ``world_root`` is where the recipe's synthetic world is written (or reused). ``max_steps`` > 0 (smoke runs)
    trains one epoch of that many steps into a separate ``<out_dir>-smoke`` folder, so a smoke run never
    overwrites (or waits for) the real model.
    """
    from reid.data.image_dataset import ImageDataset
    from reid.data.synthetic import load_captions
    from reid.models.clip_loader import load_clip
    from reid.models.tokenizer import clip_tokenizer

    out_dir = Path(out_dir)
    device = torch.device(device)
    if max_steps:
        recipe = recipe.smoke(max_steps)
        out_dir = out_dir.with_name(out_dir.name + "-smoke")
    key = recipe.cache_key()
    if not force and is_cached(out_dir, key):
        return out_dir
    print(f"[pretrain] training {out_dir.name} -> {out_dir} (once; cached by recipe)", flush=True)
    torch.manual_seed(int(recipe.seed))
    records, pids, world_dir = _caption_pairs(Path(world_root), recipe.world)
    captions = load_captions(world_dir)
    tokenizer = clip_tokenizer()
    model = load_clip(None, dict(recipe.model), attn_implementation=recipe.attn_implementation)
    model.to(device).train()
    size = (int(recipe.image_size), int(recipe.image_size))
    mean = torch.tensor(list(recipe.pixel_mean), device=device).view(1, 3, 1, 1)
    std = torch.tensor(list(recipe.pixel_std), device=device).view(1, 3, 1, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(recipe.lr), weight_decay=float(recipe.weight_decay))
    bs = int(recipe.batch_size)
    steps_per_epoch, epochs = int(recipe.steps_per_epoch), int(recipe.epochs)
    total, warm = steps_per_epoch * epochs, steps_per_epoch * int(recipe.warmup_epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine_step_factor(s, warm, total))
    g = torch.Generator().manual_seed(int(recipe.seed))
    by_pid: dict[int, list[int]] = {}
    for i, pid in enumerate(pids):
        by_pid.setdefault(pid, []).append(i)
    identities = sorted(by_pid)
    dataset = ImageDataset(records, size, "bicubic")
    for epoch in range(1, epochs + 1):
        total_loss, n = 0.0, 0
        for _ in tqdm(range(steps_per_epoch), desc=f"pretrain {epoch}/{epochs}", leave=False, disable=not progress):
            # one image per identity in a batch: a repeated caption would be a false negative for CLIP's loss
            chosen = torch.randperm(len(identities), generator=g)[: min(bs, len(identities))].tolist()
            index = [
                by_pid[identities[c]][int(torch.randint(len(by_pid[identities[c]]), (1,), generator=g))] for c in chosen
            ]
            images = torch.stack([dataset[i]["image"] for i in index]).to(device).float().div_(255)
            flip = torch.rand(images.shape[0], generator=g) < float(recipe.flip_p)
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
        print(f"[pretrain] epoch {epoch}/{epochs}  clip_loss={total_loss / max(n, 1):.4f}", flush=True)
    tmp = out_dir.with_name(out_dir.name + f".partial{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / RECIPE_FILE).write_text(json.dumps(key, indent=1, sort_keys=True))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    print(f"[pretrain] saved to {out_dir}", flush=True)
    return out_dir
