"""PK (identity-balanced) sampling for metric-learning losses.

Triplet loss with hard mining needs every batch to hold P identities with K
images each.  :class:`PKSampler` reproduces the epoch structure of CLIP-ReID's
``RandomIdentitySampler`` (docs/method.md §4.4):

* per identity, its image indices are shuffled and cut into groups of K;
  an identity with fewer than K images is drawn *with replacement* up to K;
  the ``count mod K`` leftover images of an identity are dropped for the epoch;
* batches are built by repeatedly drawing P distinct identities that still
  have groups and taking one group from each, until fewer than P identities
  have groups left (their groups are dropped), so every batch is full.

What differs from the reference, on purpose:

* randomness comes from a NumPy ``Generator`` seeded by ``(seed, epoch)``, not
  the global ``random``/``numpy`` state, so the epoch plan is a pure function of
  ``(seed, epoch)``: identical on every rank and after a resume;
* the epoch's whole plan is computed up front, so ``len()`` is exact (the
  reference returns an estimate, which makes progress bars and LR schedules
  drift);
* :meth:`PKSampler.state_dict` stores the position within the epoch so that a
  resumed run skips the batches it already trained on.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """A generator that depends on (seed, epoch) only."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(epoch)])))


class PKSampler(torch.utils.data.Sampler[int]):
    """Yields dataset indices so that each run of ``batch_size`` consecutive ones is a P×K batch.

    Use with a ``DataLoader(batch_size=batch_size, drop_last=True)``; call
    :meth:`set_epoch` before each epoch.

    Args:
        pids: identity of every dataset index (``records[i].pid``).
        batch_size: P×K images per batch.
        num_instances: K, images per identity in a batch.
        seed: base seed; the epoch plan depends on ``(seed, epoch)`` only.
    """

    def __init__(self, pids: Sequence[int], batch_size: int, num_instances: int, seed: int) -> None:
        if num_instances <= 0 or batch_size <= 0:
            raise ValueError(f"batch_size ({batch_size}) and num_instances ({num_instances}) must be positive")
        if num_instances > batch_size:
            raise ValueError(f"num_instances ({num_instances}) is larger than batch_size ({batch_size})")
        if batch_size % num_instances != 0:
            raise ValueError(
                f"batch_size ({batch_size}) is not a multiple of num_instances ({num_instances}): "
                "a PK batch must hold whole identities"
            )
        self.batch_size = int(batch_size)
        self.num_instances = int(num_instances)
        self.num_pids_per_batch = self.batch_size // self.num_instances
        self.seed = int(seed)
        self.epoch = 0
        self.start_batch = 0

        pid_array = np.asarray(list(pids), dtype=np.int64)
        # Identities in first-appearance order, as the reference's dict does; the order only
        # matters for which identity a random draw maps to, and it is fixed by the data.
        self._pids, first = np.unique(pid_array, return_index=True)
        self._pids = self._pids[np.argsort(first)]
        self._index_lists: list[np.ndarray] = [np.flatnonzero(pid_array == p) for p in self._pids]
        if len(self._pids) < self.num_pids_per_batch:
            raise ValueError(
                f"only {len(self._pids)} identities but a batch needs P = batch_size // num_instances = "
                f"{self.num_pids_per_batch} distinct identities"
            )
        self._plan_cache: tuple[int, np.ndarray] | None = None

    # ------------------------------------------------------------------ plan
    def epoch_plan(self, epoch: int | None = None) -> np.ndarray:
        """The global plan of an epoch: an int64 array (num_batches, P, K) of dataset indices."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._plan_cache is not None and self._plan_cache[0] == epoch:
            return self._plan_cache[1]
        plan = self._build_plan(epoch)
        self._plan_cache = (epoch, plan)
        return plan

    def _build_plan(self, epoch: int) -> np.ndarray:
        rng = _epoch_rng(self.seed, epoch)
        k, p = self.num_instances, self.num_pids_per_batch
        groups: list[list[np.ndarray]] = []
        for idxs in self._index_lists:
            if len(idxs) < k:
                idxs = rng.choice(idxs, size=k, replace=True)
            else:
                idxs = rng.permutation(idxs)
            n_groups = len(idxs) // k
            groups.append([idxs[g * k : (g + 1) * k] for g in range(n_groups)])

        available = list(range(len(groups)))  # identity slots that still have groups
        cursor = [0] * len(groups)
        batches: list[np.ndarray] = []
        while len(available) >= p:
            chosen = rng.choice(len(available), size=p, replace=False)
            slots = [available[c] for c in chosen]
            batches.append(np.stack([groups[s][cursor[s]] for s in slots]))
            for s in slots:
                cursor[s] += 1
            exhausted = {s for s in slots if cursor[s] == len(groups[s])}
            if exhausted:
                available = [s for s in available if s not in exhausted]
        if not batches:
            return np.zeros((0, p, k), dtype=np.int64)
        return np.stack(batches).astype(np.int64)

    # ------------------------------------------------------------ this rank
    def _local_plan(self, plan: np.ndarray) -> np.ndarray:
        """This process's share of each global batch: (num_batches, P_local, K)."""
        return plan

    @property
    def local_batch_size(self) -> int:
        """Images per batch that this sampler's process loads (the DataLoader's batch_size)."""
        return self.batch_size

    @property
    def num_batches(self) -> int:
        """Batches in the full current epoch (ignoring ``start_batch``)."""
        return int(self.epoch_plan().shape[0])

    def __iter__(self) -> Iterator[int]:
        local = self._local_plan(self.epoch_plan())[self.start_batch :]
        return iter(local.reshape(-1).tolist())

    def __len__(self) -> int:
        return max(self.num_batches - self.start_batch, 0) * self.local_batch_size

    # -------------------------------------------------------- epochs/resume
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's plan; moving to another epoch restarts at its first batch."""
        epoch = int(epoch)
        if epoch != self.epoch:
            self.start_batch = 0
        self.epoch = epoch

    def _fingerprint(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "num_instances": self.num_instances,
            "num_indices": int(sum(len(i) for i in self._index_lists)),
            "num_pids": len(self._pids),
        }

    def state_dict(self, batch_in_epoch: int | None = None) -> dict[str, Any]:
        """Everything needed to resume: seed, epoch and the position within the epoch.

        Args:
            batch_in_epoch: index, within the epoch's full plan, of the next batch
                to train on (``sampler.start_batch + batches the loop finished
                since this epoch's iterator started``).  The sampler cannot count
                this itself because the DataLoader prefetches ahead of training.
                ``None`` keeps the current ``start_batch`` (an epoch-boundary
                checkpoint taken after ``set_epoch``).
        """
        position = self.start_batch if batch_in_epoch is None else int(batch_in_epoch)
        if not 0 <= position <= self.num_batches:
            raise ValueError(f"batch_in_epoch {position} outside [0, {self.num_batches}]")
        return {"seed": self.seed, "epoch": self.epoch, "start_batch": position, **self._fingerprint()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore seed/epoch/position; a following ``set_epoch`` with the same epoch keeps the position."""
        mine = self._fingerprint()
        mismatch = {k: (state[k], v) for k, v in mine.items() if k in state and state[k] != v}
        if mismatch:
            raise ValueError(f"sampler state was saved for a different setup (saved, current): {mismatch}")
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.start_batch = int(state["start_batch"])
        self._plan_cache = None


class DistributedPKSampler(PKSampler):
    """PK sampling for DDP: every rank takes whole identities out of the same global batch.

    Semantics: ``batch_size`` is the *global* batch P×K.  All ranks build the
    same global epoch plan from ``(seed, epoch)`` (no communication needed).
    Within each global batch the P identity groups are split in order into
    ``num_replicas`` consecutive slices of ``P / num_replicas`` identities, and
    rank ``r`` loads slice ``r``, i.e. ``batch_size / num_replicas`` images.
    Hence ranks are disjoint, each rank's batch is itself identity-balanced
    (P/R identities × K), every rank has the same number of batches, and the
    union over ranks at step t is exactly the single-process batch t — a run on
    R GPUs sees the same images per step as a run on one.  (CLIP-ReID's
    ``RandomIdentitySampler_DDP`` instead samples independent per-rank PK
    mini-batches; the per-rank batch composition is the same kind, the global
    batch is not comparable to the single-GPU one.)

    Because ``start_batch`` counts *global* batches, a state saved by any rank
    (they are identical) resumes correctly on a different number of ranks.

    Args:
        pids, batch_size, num_instances, seed: as :class:`PKSampler` (global batch).
        num_replicas: world size R; P must be divisible by R.
        rank: this process's rank in [0, R).
    """

    def __init__(
        self,
        pids: Sequence[int],
        batch_size: int,
        num_instances: int,
        seed: int,
        num_replicas: int,
        rank: int,
    ) -> None:
        super().__init__(pids, batch_size, num_instances, seed)
        if num_replicas <= 0:
            raise ValueError(f"num_replicas must be positive, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        if self.num_pids_per_batch % num_replicas != 0:
            raise ValueError(
                f"P = batch_size // num_instances = {self.num_pids_per_batch} identities per global batch "
                f"cannot be split evenly over {num_replicas} ranks"
            )
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.pids_per_rank = self.num_pids_per_batch // self.num_replicas

    def _local_plan(self, plan: np.ndarray) -> np.ndarray:
        lo = self.rank * self.pids_per_rank
        return plan[:, lo : lo + self.pids_per_rank]

    @property
    def local_batch_size(self) -> int:
        return self.pids_per_rank * self.num_instances
