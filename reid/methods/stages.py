"""The two kinds of stage the methods are made of: prompt learning (CLIP-ReID stage 1) and image-encoder training
(CLIP-ReID stage 2, the whole baseline). Each function turns a :class:`Toolkit` into a runnable :class:`Stage`."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from reid.engine.checkpoint import rng_state, set_rng_state
from reid.engine.distributed import broadcast_module_state, gather_features, shard
from reid.engine.ssl_terms import language_views_loss
from reid.engine.stage1 import cache_image_features, stage1_batches, text_classifier
from reid.engine.stage2 import Stage2Net, image_step
from reid.losses.id_loss import classifier_accuracy
from reid.methods.base import Stage, Toolkit


def cached_features(kit: Toolkit, records, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen projected features of ``records`` (test transform, no SIE); under DDP rank r encodes records[r::R]
    and the shards are all-gathered, so every rank holds them all in dataset order."""
    model: Any = kit.system["image"]
    local, index = shard(records, kit.dist)
    if local:
        with kit.extract_autocast():
            feats, labels = cache_image_features(
                model.encode_projected, kit.feature_loader(local, batch_size), kit.test_transform, kit.device,
                progress=kit.progress and kit.dist.is_main,
            )
    else:
        feats = torch.zeros(0, int(model.encoder.proj_dim), device=kit.device)
        labels = torch.zeros(0, dtype=torch.int64, device=kit.device)
    if not kit.dist.distributed:
        return feats, labels
    pids = labels.cpu().numpy()
    feats, pids, _ = gather_features(feats, pids, pids, index)
    return feats.to(kit.device), torch.as_tensor(pids, device=kit.device)


def prompt_stage(kit: Toolkit, name: str) -> Stage:
    """Prompt learning: only the prompt tokens train; image and text encoders are frozen (docs/method.md §3).

    Under DDP the feature cache is sharded and gathered, every rank then runs the same (cheap) prompt training on the
    same cached features from the same seed, and rank 0's prompts (and language-SSL projector) are broadcast at the
    end, so the text classifier of the image stage is bit-identical on all ranks.
    """
    system, settings = kit.system, kit.settings[name]
    for p in system.parameters():
        p.requires_grad_(False)
    prompt, text = system["prompt"], system["text"]
    prompt.cls_ctx.requires_grad_(True)
    system["image"].eval()
    feats, labels = cached_features(kit, kit.train, settings.feature_batch_size)
    trainable = list(prompt.named_parameters())
    language = system["ssl_text"] if "ssl_text" in system else None
    if language is not None and language.trainable:
        for p in language.parameters():
            p.requires_grad_(True)
        trainable += [(f"ssl_text.{n}", p) for n, p in language.named_parameters()]
    objective = kit.objective("prompt", {"ssl_lang"} if language is not None else set())
    optimizer, scheduler = kit.optimizer(name, trainable, settings.epochs)

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        image_feats, batch_labels = batch
        outputs = {"image": image_feats, "labels": batch_labels, "text": text(prompt(batch_labels), prompt.eot_index)}
        if language is not None:
            outputs["ssl_lang"] = language_views_loss(prompt, text, language, batch_labels)
        return objective(outputs)

    def finish() -> None:
        if kit.dist.distributed:
            broadcast_module_state(prompt)
            if language is not None:
                broadcast_module_state(language)
        system.train()

    return Stage(
        name=name, epochs=settings.epochs, trainable=trainable, optimizer=optimizer, scheduler=scheduler,
        batches=stage1_batches(feats, labels, settings.batch_size, kit.seed),
        steps_per_epoch=-(-len(feats) // settings.batch_size), step=step, finish=finish,
    )


def freeze_text_side(kit: Toolkit, chunk: int) -> torch.Tensor:
    """Freeze prompts and text encoder; the text classifier T (N_ids × D), computed once in chunks of ``chunk``
    identities, is fixed for the image stage (docs/method.md §4.1)."""
    prompt, text = kit.system["prompt"], kit.system["text"]
    for p in list(prompt.parameters()) + list(text.parameters()):
        p.requires_grad_(False)
    return text_classifier(prompt, text, chunk, kit.device)


def image_stage(
    kit: Toolkit, name: str, text_weights: torch.Tensor | Callable[[], torch.Tensor] | None = None,
    extra_trainable: Sequence[tuple[str, torch.nn.Parameter]] = (),
) -> Stage:
    """The image encoder with ID, triplet (and image-to-text / vision-SSL) terms (docs/method.md §4; the baseline).

    ``text_weights``: the text classifier of the image-to-text term (fixed, or a callable recomputed every step);
    ``extra_trainable``: parameters outside the image model that this stage's optimiser also trains.
    """
    system, settings, dist = kit.system, kit.settings[name], kit.dist
    model: Any = system["image"]
    ssl_head = system["ssl_image"] if "ssl_image" in system else None
    provided: set[str] = set()
    if text_weights is not None:
        provided.add("text_classifier")
    if ssl_head is not None:
        provided.add("ssl_vis")
    objective = kit.objective("image", provided, monitors={"acc": classifier_accuracy})
    # Under DDP each rank loads its own P/R identities of every global P×K batch (batch_size stays global).
    loader = kit.train_loader(settings.batch_size, settings.num_instances)
    sampler = loader.sampler
    for p in model.parameters():
        p.requires_grad_(True)
    for head in (model.head, model.head_proj):
        head.bn.bias.requires_grad_(False)
        if "id" not in objective.names:  # nothing reads the classifiers: an unused parameter would stall DDP
            head.classifier.weight.requires_grad_(False)
    trainable = list(model.named_parameters()) + list(extra_trainable)
    if ssl_head is not None:
        trainable += [(f"ssl_image.{n}", p) for n, p in ssl_head.named_parameters()]
    # One module, one forward per step (main view + SVLL's two SSL views): what DistributedDataParallel wraps.
    net: torch.nn.Module = Stage2Net(model, ssl_head, detach=kit.ssl_detach)
    if dist.distributed:
        # Every trainable parameter gets a gradient every step (tests/distributed/test_ddp_units.py checks each
        # variant), so find_unused_parameters=False; DDP syncs rank 0's buffers (BatchNorm statistics) every forward.
        net = DistributedDataParallel(
            net, device_ids=[kit.device.index] if kit.device.type == "cuda" else None, find_unused_parameters=False
        )
    optimizer, scheduler = kit.optimizer(name, trainable, settings.epochs)
    step = image_step(net, kit.augment, objective, kit.device, any(model.side_info),
                      kit.ssl_augment if ssl_head is not None else None, text_weights)

    def batches(epoch: int, begin: int):
        sampler.set_epoch(epoch)
        sampler.start_batch = begin  # mid-epoch resume: the epoch plan is a pure function of (seed, epoch)
        return iter(loader)

    def state() -> dict[str, Any]:
        extra: dict[str, Any] = {"text_classifier": None if callable(text_weights) else text_weights}
        if dist.distributed:  # a collective: the loop builds the state on every rank, rank 0 writes it
            extra["rng_per_rank"] = dist.all_gather_object(rng_state())
        return extra

    def restore(checkpoint: dict[str, Any], epoch: int, batch: int) -> None:
        per_rank = checkpoint.get("rng_per_rank")
        if dist.distributed and per_rank is not None and len(per_rank) == dist.world_size:
            set_rng_state(per_rank[dist.rank])  # each rank continues its own augmentation stream
        else:
            dist.decorrelate_rng(kit.seed, epoch, batch)

    return Stage(
        name=name, epochs=settings.epochs, trainable=trainable, optimizer=optimizer, scheduler=scheduler,
        batches=batches, steps_per_epoch=len(loader), step=step, state=state, eval_period=settings.eval_period,
        restore=restore, fresh=lambda: dist.decorrelate_rng(kit.seed),  # ranks > 0 draw their own augmentations
    )
