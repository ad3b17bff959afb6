"""Code the two gloo processes of ``test_ddp_units.py`` run (started with ``torch.multiprocessing.spawn``).

A plain module, not a test file: spawned children import it by name, so the test
puts this folder on ``sys.path`` before spawning. Each rank writes what it saw to
``<out_dir>/rank<r>.json`` and the test compares the ranks' answers.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from reid.data.transforms import TrainAugment
from reid.engine.checkpoint import Checkpointer
from reid.engine.distributed import (
    broadcast_module_state,
    cleanup,
    gather_features,
    init_distributed,
    shard,
)
from reid.engine.faults import NonFinitePolicy, Preempted
from reid.engine.loop import StageLoop
from reid.engine.precision import Precision
from reid.engine.ssl_terms import SSLHead
from reid.engine.stage2 import Stage2Net, image_step
from reid.losses.id_loss import classifier_accuracy
from reid.losses.terms import Objective, make_objective
from reid.models.clip_loader import load_clip
from reid.models.reid_model import ReIDModel
from reid.models.ssl_heads import ProjectionMLP, SimSiamPredictor
from reid.models.vit_encoder import ClipViTEncoder, SideInformationEmbedding
from reid.tracking.base import NullTracker

GATHER_N = 11
GATHER_PERMUTATION = [int(i) for i in np.random.default_rng(0).permutation(GATHER_N)]
GATHER_SPLIT = 4  # rank 0 owns the first 4 shuffled positions, rank 1 the other 7 (uneven on purpose)


TINY_CLIP = {
    "projection_dim": 16,
    "vision": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
               "image_size": 32, "patch_size": 8},
    "text": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "max_position_embeddings": 77, "vocab_size": 49408},
}
IMAGE_SIZE = (32, 16)
NUM_CLASSES, NUM_CAMS, NUM_VIEWS = 4, 3, 2


def tiny_stage2(sie: bool, ssl: str | None, seed: int = 0) -> tuple[Stage2Net, Objective]:
    """A two-layer CLIP ViT ReID model (optionally with camera+view SIE and an SSL head) and a full objective."""
    torch.manual_seed(seed)
    clip = load_clip(None, TINY_CLIP, attn_implementation="eager")
    width = TINY_CLIP["vision"]["hidden_size"]
    table = SideInformationEmbedding(width, NUM_CAMS, NUM_VIEWS, True, True, 3.0) if sie else None
    encoder = ClipViTEncoder(clip.vision_model, clip.visual_projection, IMAGE_SIZE, 8, 1, table)
    model = ReIDModel(encoder, NUM_CLASSES, 0.001, "before")
    head = None
    if ssl == "simclr":
        head = SSLHead("simclr", ProjectionMLP(width, 16, 8), 0.5)
    elif ssl == "simsiam":  # SVLL-ReID's form: the predictor on the class token itself
        head = SSLHead("simsiam", None, None, SimSiamPredictor(width, 16))
    elif ssl == "simsiam_projector":
        head = SSLHead("simsiam", ProjectionMLP(width, 16, 8), 0.5, SimSiamPredictor(8, 16))
    objective = make_objective(
        "image", {"id": 1.0, "triplet": 1.0, "i2t": 1.0, "ssl_vis": 0.5},
        {"id": {"label_smoothing": 0.1}, "triplet": {"margin": 0.3, "on": ["mid", "last", "proj"]},
         "i2t": {"label_smoothing": 0.1}},
        {"text_classifier", "ssl_vis"}, monitors={"acc": classifier_accuracy},
    )
    return Stage2Net(model, head).train(), objective


TEXT = torch.randn(NUM_CLASSES, TINY_CLIP["projection_dim"], generator=torch.Generator().manual_seed(5))


def tiny_step(net, objective: Objective, sie: bool, ssl_augment):
    """The stage-2 step over ``net`` (or its DDP wrapper) with the tiny objective and text classifier."""
    augment, _ = augments()
    return image_step(net, augment, objective, torch.device("cpu"), sie, ssl_augment, TEXT)


def tiny_batch(seed: int, n_ids: int = 2, k: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    b = n_ids * k
    return {
        "image": torch.randint(0, 256, (b, 3, *IMAGE_SIZE), generator=g, dtype=torch.uint8),
        "pid": torch.arange(n_ids).repeat_interleave(k) + (seed % 2) * n_ids,
        "camid": torch.randint(0, NUM_CAMS, (b,), generator=g),
        "viewid": torch.randint(0, NUM_VIEWS, (b,), generator=g),
    }


def augments() -> tuple[TrainAugment, TrainAugment]:
    return TrainAugment((0.5,) * 3, (0.5,) * 3, pad=2), TrainAugment(
        (0.5,) * 3, (0.5,) * 3, pad=2, erase_area=(0.33, 1 / 3)
    )


def gather_row(i: int) -> list[float]:
    return [float(i), 2.0 * i, -float(i), 0.5 + i]


def _tolist(t: torch.Tensor | np.ndarray) -> list:
    return np.asarray(t).tolist()


def _loop(
    name: str, model: nn.Module, step, steps: int, ctx, nonfinite: NonFinitePolicy, checkpointer: Checkpointer
) -> StageLoop:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
    data = [torch.full((2, 4), float(ctx.rank + 1 + k)) for k in range(steps)]  # per-rank batches, as a sampler gives
    return StageLoop(
        name=name, epochs=1, model=model, params=list(model.parameters()), optimizer=optimizer, scheduler=scheduler,
        batches=lambda epoch, begin: iter(data[begin:]), steps_per_epoch=steps, step=step,
        precision=Precision("fp32", torch.device("cpu")), tracker=NullTracker(), checkpointer=checkpointer,
        nonfinite=nonfinite, state=lambda: {}, progress=False, dist=ctx, verbose=False,
    )


def run_checks(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    out: dict[str, Any] = {"rank": ctx.rank, "world_size": ctx.world_size, "owns_group": ctx.owns_group,
                           "backend": torch.distributed.get_backend(), "device": str(ctx.device)}

    # 1. uneven, shuffled shards come back in index order, identically on every rank
    mine = GATHER_PERMUTATION[:GATHER_SPLIT] if rank == 0 else GATHER_PERMUTATION[GATHER_SPLIT:]
    feats = torch.tensor([gather_row(i) for i in mine], dtype=torch.float32)
    f, p, c = gather_features(feats, [100 + i for i in mine], [i % 3 for i in mine], mine)
    out["gather"] = {"feats": _tolist(f), "pids": _tolist(p), "camids": _tolist(c), "dtype": str(f.dtype)}

    # 2. the evaluator's strided shards (records[rank::world])
    items = list(range(9))
    local, index = shard(items, ctx)
    f, p, c = gather_features(torch.tensor(local, dtype=torch.float32)[:, None], local, local, index)
    out["strided"] = {"local": local, "feats": _tolist(f[:, 0]), "pids": _tolist(p)}

    # 3. a rank with nothing to contribute (fewer images than ranks)
    n = 1 if rank == 0 else 0
    f, p, c = gather_features(torch.ones(n, 4) * 7, [5] * n, [1] * n, list(range(n)))
    out["empty_shard"] = {"shape": list(f.shape), "pids": _tolist(p)}

    # 4. indices that are not a permutation of 0..N-1 are refused on every rank
    try:
        gather_features(torch.zeros(2, 1), [0, 0], [0, 0], [0, 1] if rank == 0 else [1, 2])
        out["duplicate_index"] = "accepted"
    except ValueError as err:
        out["duplicate_index"] = str(err)

    # 5. parameters *and* buffers (BatchNorm running statistics) come from rank 0
    torch.manual_seed(100 + rank)
    module = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).train()
    module(torch.randn(5, 3) * (rank + 1))  # rank-specific running statistics
    broadcast_module_state(module)
    state = {k: _tolist(v) for k, v in module.state_dict().items()}
    out["broadcast_state"] = state

    # 6. small collectives
    out["broadcast_object"] = ctx.broadcast_object({"from": rank})
    out["all_gather_object"] = ctx.all_gather_object(rank * 10)
    out["any_flags"] = list(ctx.any_flags(rank == 1, False))
    sums, count = ctx.sum_stats({"loss": rank + 1.0, "acc": 0.5}, rank + 1)
    out["sum_stats"] = {"sums": sums, "count": count}

    # 7. a non-finite loss on rank 1 only: both ranks skip the same step (no rank runs a backward alone, which
    #    would hang DDP's all-reduce), the forward-without-backward is fine for DDP, and the ranks stay identical
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    ddp = DistributedDataParallel(model)

    def nan_step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = ddp(batch).pow(2).mean()
        if rank == 1 and float(batch[0, 0]) == 3.0:  # rank 1's second batch
            loss = loss * float("nan")
        return {"loss": loss}

    nonfinite = NonFinitePolicy("skip", 5)
    loop = _loop("unit", model, nan_step, 3, ctx, nonfinite, Checkpointer(Path(out_dir) / "unused", 1, enabled=False))
    loop.run()
    out["nonfinite"] = {
        "skipped": nonfinite.skipped,
        "weights": [_tolist(p.detach()) for p in model.parameters()],
        "loss_mean": loop.history["unit/loss"][0],
    }

    # 8. SIGTERM delivered to rank 1 only: the ranks agree to stop after the same step; rank 0 writes the checkpoint
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    ddp = DistributedDataParallel(model)

    def term_step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        if rank == 1 and float(batch[0, 0]) == 3.0:
            os.kill(os.getpid(), signal.SIGTERM)  # caught by the loop's SigtermFlag
        return {"loss": ddp(batch).pow(2).mean()}

    folder = Path(out_dir) / "ckpt"
    loop = _loop("sigterm", model, term_step, 4, ctx, NonFinitePolicy("stop", 0),
                 Checkpointer(folder, 1, enabled=ctx.is_main))
    try:
        loop.run()
        out["sigterm"] = "not stopped"
    except Preempted as err:
        out["sigterm"] = str(err)
    torch.distributed.barrier()
    saved = sorted(p.name for p in folder.glob("*.pt")) if folder.is_dir() else []
    out["sigterm_checkpoints"] = saved
    out["sigterm_batch"] = int(Checkpointer.load(folder / saved[0])["batch"]) if saved else None

    # 9. the real stage-2 module under DDP with find_unused_parameters=False, in its widest form (SIE on camera and
    #    view, vision SSL with SimSiam): two steps on per-rank batches. An unused parameter would make DDP raise at
    #    the second forward; afterwards the ranks' weights must be identical.
    net, objective = tiny_stage2(sie=True, ssl="simsiam")
    wrapped = DistributedDataParallel(net, find_unused_parameters=False)
    _, ssl_augment = augments()
    step = tiny_step(wrapped, objective, True, ssl_augment)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    for i in range(2):
        terms = step(tiny_batch(10 * i + rank))
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
    out["ddp_stage2"] = {
        "terms": sorted(terms),
        "grads_missing": [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None],
    }
    # parameters only: BatchNorm running statistics are rank-local between DDP's buffer syncs
    states = ctx.all_gather_object({k: v.detach().clone() for k, v in net.named_parameters()})
    out["ddp_stage2"]["identical_across_ranks"] = all(torch.equal(states[0][k], states[1][k]) for k in states[0])

    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(out))
    cleanup(ctx)
