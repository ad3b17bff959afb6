"""Process-group plumbing for ``torchrun`` (DDP): context, sharded-evaluation gather, state broadcasts.

``torchrun --nproc_per_node=N -m reid.train ...`` starts N copies of the Hydra app
with ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` (and the rendezvous address) in the
environment. :func:`init_distributed` turns that into a :class:`DistContext`;
without those variables (or with ``WORLD_SIZE=1``) it returns a single-process
context and every helper here is a no-op, so one code path serves both cases.

Backends: NCCL when the ranks train on CUDA (each rank on ``cuda:LOCAL_RANK``),
gloo on the CPU. Collectives on an NCCL group need CUDA tensors, so helpers
move what they send to :attr:`DistContext.comm_device` and back.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

# Collective timeout. Ranks wait in a collective while rank 0 alone scores an evaluation (re-ranking a large
# gallery can take many minutes on the CPU) or writes a checkpoint, so the default is generous; a genuinely hung
# job is still stopped, only later. Override with REID_DIST_TIMEOUT_S.
TIMEOUT_ENV = "REID_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 3600


@dataclass
class DistContext:
    """Where this process sits in the job: its rank, the world size, its device.

    ``owns_group``: whether :func:`init_distributed` created the process group (and
    :func:`cleanup` should destroy it); a group set up by the caller is left alone.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def comm_device(self) -> torch.device:
        """Where tensors must live for this group's collectives (CUDA for NCCL, CPU for gloo)."""
        return _comm_device()

    # ------------------------------------------------------------------ small collectives
    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """``obj`` from rank ``src`` on every rank (pickled; for small values: paths, metrics, messages)."""
        if not self.distributed:
            return obj
        box = [obj if self.rank == src else None]
        dist.broadcast_object_list(box, src=src, device=self.comm_device)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def any_flags(self, *flags: bool) -> tuple[bool, ...]:
        """Element-wise OR of boolean flags over all ranks (one all-reduce), so that ranks take the same branch."""
        if not self.distributed:
            return tuple(bool(f) for f in flags)
        t = torch.tensor([1 if f else 0 for f in flags], dtype=torch.int32, device=self.comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())

    def sum_stats(self, sums: dict[str, float], count: int) -> tuple[dict[str, float], int]:
        """Sum per-rank running sums and step counts over ranks (ranks must hold the same keys)."""
        if not self.distributed:
            return dict(sums), count
        names = sorted(sums)
        t = torch.tensor([float(count)] + [float(sums[n]) for n in names], dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        values = t.tolist()
        return dict(zip(names, values[1:])), int(round(values[0]))

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the body on rank 0 first, then on the other ranks: for steps that create shared files on first use
        (the synthetic world, a self-pretrained backbone) and are not safe to run concurrently."""
        if self.distributed and not self.is_main:
            barrier()
        yield
        if self.distributed and self.is_main:
            barrier()

    def decorrelate_rng(self, seed: int, *salt: int) -> None:
        """Give ranks > 0 their own RNG streams (augmentation draws), derived from (seed, rank, *salt).

        Rank 0 keeps its stream, so a single-process run and rank 0 of a DDP run
        draw the same way; a no-op when not distributed.
        """
        if not self.distributed or self.is_main:
            return
        mixed = np.random.SeedSequence([int(seed), int(self.rank), *(int(s) for s in salt)]).generate_state(2)
        value = int(mixed[0]) << 32 | int(mixed[1])
        random.seed(value)
        np.random.seed(value % 2**32)
        torch.manual_seed(value % 2**63)  # also seeds every CUDA device


def _comm_device() -> torch.device:
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _device_for(spec: str, local_rank: int, world_size: int) -> torch.device:
    """``device`` setting -> this rank's device: under DDP every rank takes ``cuda:LOCAL_RANK``."""
    spec = str(spec)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={spec!r} but CUDA is not available on this machine (use device=cpu or auto)")
        if world_size > 1:
            if device.index is not None:
                raise ValueError(
                    f"device={spec!r} under torchrun: every rank would use the same GPU. Use device=auto or "
                    "device=cuda (each rank then takes cuda:LOCAL_RANK); choose GPUs with CUDA_VISIBLE_DEVICES"
                )
            if local_rank >= torch.cuda.device_count():
                raise RuntimeError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPUs are visible")
            device = torch.device("cuda", local_rank)
    return device


def init_distributed(device_spec: str = "auto", timeout_s: float | None = None) -> DistContext:
    """Context from torchrun's environment; initialises the process group when ``WORLD_SIZE`` > 1.

    Single process (no ``WORLD_SIZE``, or 1): no group, ``device`` resolved as
    ``reid.build.resolve_device`` does. Distributed: NCCL on CUDA (this rank's GPU
    made current), gloo on the CPU. A group that already exists is reused.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world <= 1:
        return DistContext(0, 1, 0, _device_for(device_spec, 0, 1), owns_group=False)
    if not 0 <= rank < world:
        raise RuntimeError(f"RANK={rank} outside [0, WORLD_SIZE={world})")
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    device = _device_for(device_spec, local_rank, world)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        seconds = float(timeout_s if timeout_s is not None else os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
        kwargs: dict[str, Any] = {"timeout": datetime.timedelta(seconds=seconds)}
        if device.type == "cuda":
            torch.cuda.set_device(device)
            kwargs["device_id"] = device  # binds the rank to its GPU (eager NCCL init, device-aware barriers)
        dist.init_process_group(backend, rank=rank, world_size=world, **kwargs)
        owns = True
    elif dist.get_world_size() != world or dist.get_rank() != rank:
        raise RuntimeError(
            f"a process group exists with rank {dist.get_rank()}/{dist.get_world_size()}, "
            f"but the environment says {rank}/{world}"
        )
    return DistContext(rank, world, local_rank, device, owns_group=owns)


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def cleanup(ctx: DistContext | None = None) -> None:
    """Destroy the process group if ``ctx`` created it (or, without ``ctx``, if one exists)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if ctx is None or ctx.owns_group:
        dist.destroy_process_group()


@torch.no_grad()
def broadcast_module_state(module: nn.Module, src: int = 0) -> None:
    """Overwrite every parameter and buffer of ``module`` with rank ``src``'s values (in place)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    comm = _comm_device()
    tensors = list(module.parameters()) + list(module.buffers())
    for t in tensors:
        data = t.data
        if data.device == comm and data.is_contiguous():
            dist.broadcast(data, src=src)
        else:
            staged = data.detach().to(comm).contiguous()
            dist.broadcast(staged, src=src)
            data.copy_(staged)


def gather_features(
    feats: torch.Tensor,
    pids: Sequence[int] | np.ndarray,
    camids: Sequence[int] | np.ndarray,
    index: Sequence[int] | np.ndarray,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """All-gather every rank's shard of descriptors and put the rows back in their original order.

    Args:
        feats: (n_local, D) descriptors of this rank's images (n_local may differ per rank, and be 0).
        pids, camids: their labels, (n_local,).
        index: each row's position in the full list (e.g. ``range(rank, N, world)`` for ``records[rank::world]``);
            over all ranks the indices must be exactly 0..N-1, once each.

    Returns (features (N, D) float on the CPU, pids (N,), camids (N,)) on every rank, ordered by ``index``.
    Without a process group the shard is only reordered.
    """
    feats = feats.detach()
    pids_t = torch.as_tensor(np.asarray(pids, dtype=np.int64))
    cams_t = torch.as_tensor(np.asarray(camids, dtype=np.int64))
    index_t = torch.as_tensor(np.asarray(index, dtype=np.int64))
    n_local = int(index_t.numel())
    if feats.dim() != 2 or feats.shape[0] != n_local or pids_t.numel() != n_local or cams_t.numel() != n_local:
        raise ValueError(
            f"gather_features: feats {tuple(feats.shape)}, pids {pids_t.numel()}, camids {cams_t.numel()} "
            f"and index {n_local} must describe the same rows"
        )
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        all_feats, all_meta = feats.cpu(), torch.stack([index_t, pids_t, cams_t], dim=1)
    else:
        comm = _comm_device()
        world = dist.get_world_size()
        shape = torch.tensor([n_local, feats.shape[1]], dtype=torch.int64, device=comm)
        shapes = [torch.zeros_like(shape) for _ in range(world)]
        dist.all_gather(shapes, shape)
        sizes = [int(s[0]) for s in shapes]
        dims = {int(s[1]) for s, n in zip(shapes, sizes) if n > 0}
        if len(dims) > 1:
            raise ValueError(f"gather_features: ranks hold descriptors of different widths {sorted(dims)}")
        dim = dims.pop() if dims else int(feats.shape[1])
        longest = max(sizes)
        dtype = feats.dtype if feats.is_floating_point() else torch.float32
        # Pad every shard to the longest one: all_gather needs equal shapes.
        local = torch.zeros(longest, dim, dtype=dtype, device=comm)
        local[:n_local] = feats.to(comm, dtype)
        meta = torch.full((longest, 3), -1, dtype=torch.int64, device=comm)
        meta[:n_local] = torch.stack([index_t, pids_t, cams_t], dim=1).to(comm)
        gathered = [torch.empty_like(local) for _ in range(world)]
        gathered_meta = [torch.empty_like(meta) for _ in range(world)]
        dist.all_gather(gathered, local)
        dist.all_gather(gathered_meta, meta)
        all_feats = torch.cat([g[:n].cpu() for g, n in zip(gathered, sizes)])
        all_meta = torch.cat([m[:n].cpu() for m, n in zip(gathered_meta, sizes)])
    total = int(all_meta.shape[0])
    order = all_meta[:, 0]
    if total and not torch.equal(torch.sort(order).values, torch.arange(total)):
        raise ValueError(f"gather_features: the ranks' indices are not a permutation of 0..{total - 1}")
    position = torch.empty(total, dtype=torch.int64)
    position[order] = torch.arange(total)
    all_feats = all_feats[position]
    all_meta = all_meta[position]
    return all_feats, all_meta[:, 1].numpy().copy(), all_meta[:, 2].numpy().copy()


def shard(items: Sequence[Any], ctx: DistContext) -> tuple[list[Any], np.ndarray]:
    """This rank's strided shard ``items[rank::world]`` and the shard's positions in ``items``."""
    positions = np.arange(ctx.rank, len(items), ctx.world_size, dtype=np.int64)
    return [items[int(i)] for i in positions], positions
