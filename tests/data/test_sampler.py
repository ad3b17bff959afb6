"""PK sampler: batch structure, exact length, determinism, DDP split, resume, errors."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from reid.data.sampler import DistributedPKSampler, PKSampler


def market_like_pids(seed: int = 0, num_ids: int = 60) -> list[int]:
    """Identities with 1..15 images each, interleaved as a real image list is."""
    rng = np.random.default_rng(seed)
    pids = [pid for pid in range(num_ids) for _ in range(int(rng.integers(1, 16)))]
    rng.shuffle(pids)
    return pids


def batches_of(sampler: PKSampler) -> list[list[int]]:
    idx = list(sampler)
    bs = sampler.local_batch_size
    assert len(idx) % bs == 0
    return [idx[i : i + bs] for i in range(0, len(idx), bs)]


def test_every_batch_has_p_distinct_ids_with_k_images_each() -> None:
    pids = market_like_pids()
    sampler = PKSampler(pids, batch_size=32, num_instances=4, seed=3)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        batches = batches_of(sampler)
        assert len(batches) > 0
        for batch in batches:
            counts = Counter(pids[i] for i in batch)
            assert len(counts) == 8
            assert set(counts.values()) == {4}
            # each identity's K images are consecutive in the batch
            assert all(len({pids[i] for i in batch[g : g + 4]}) == 1 for g in range(0, 32, 4))


def test_ids_with_fewer_than_k_images_are_repeated_and_leftovers_dropped() -> None:
    # P = 3 = number of ids, so every id is in the single batch of every epoch.
    pids = [0] + [1, 1] + [2] * 6  # id0: 1 image, id1: 2 images, id2: 6 images -> one group of 4
    sampler = PKSampler(pids, batch_size=12, num_instances=4, seed=0)
    for epoch in range(10):
        sampler.set_epoch(epoch)
        idx = list(sampler)
        assert len(idx) == 12 == len(sampler)
        by_id = {p: [i for i in idx if pids[i] == p] for p in (0, 1, 2)}
        assert by_id[0] == [0, 0, 0, 0]
        assert len(by_id[1]) == 4 and set(by_id[1]) <= {1, 2}
        assert len(by_id[2]) == 4 and len(set(by_id[2])) == 4  # without replacement; 2 of 6 dropped
        assert set(by_id[2]) <= set(range(3, 9))


def test_len_is_exact_on_hand_built_examples() -> None:
    # K=4, P=2. Groups per id: 9 -> 2, 3 -> 1 (replacement), 4 -> 1, 8 -> 2.
    # With P=2 the plan depends on the draws: 3 batches, or 2 when one id is left with 2 groups.
    pids = [0] * 9 + [1] * 3 + [2] * 4 + [3] * 8
    sampler = PKSampler(pids, batch_size=8, num_instances=4, seed=1)
    seen = set()
    for epoch in range(40):
        sampler.set_epoch(epoch)
        n = len(list(sampler))
        assert n == len(sampler) == 8 * sampler.num_batches
        seen.add(n)
    assert seen == {16, 24}
    # Every id has exactly one group (4, 5, 7, 2 images; K=4): always 4 groups -> exactly 2 batches.
    even = PKSampler([0] * 4 + [1] * 5 + [2] * 7 + [3] * 2, batch_size=8, num_instances=4, seed=0)
    for epoch in range(5):
        even.set_epoch(epoch)
        assert len(even) == 16 == len(list(even))
    # P = number of ids: the batch count is the smallest group count (min(3, 1) = 1).
    tight = PKSampler([0] * 12 + [1] * 4, batch_size=8, num_instances=4, seed=0)
    assert len(tight) == 8 == len(list(tight))


def test_plan_is_a_pure_function_of_seed_and_epoch() -> None:
    pids = market_like_pids(1)
    a = PKSampler(pids, 16, 4, seed=7)
    b = PKSampler(pids, 16, 4, seed=7)
    a.set_epoch(2)
    b.set_epoch(2)
    first = list(a)
    assert first == list(b)
    assert first == list(a)  # iterating again does not advance any state
    a.set_epoch(3)
    assert list(a) != first
    a.set_epoch(2)
    assert list(a) == first
    c = PKSampler(pids, 16, 4, seed=8)
    c.set_epoch(2)
    assert list(c) != first


def test_distributed_ranks_are_disjoint_balanced_and_union_to_single_plan() -> None:
    pids = market_like_pids(2)
    single = PKSampler(pids, batch_size=32, num_instances=4, seed=5)
    ranks = [DistributedPKSampler(pids, 32, 4, seed=5, num_replicas=4, rank=r) for r in range(4)]
    for epoch in (0, 1):
        single.set_epoch(epoch)
        for s in ranks:
            s.set_epoch(epoch)
        global_batches = batches_of(single)
        per_rank = [batches_of(s) for s in ranks]
        assert all(len(b) == len(global_batches) for b in per_rank)
        assert all(len(s) == len(single) // 4 for s in ranks)
        for step, global_batch in enumerate(global_batches):
            local = [per_rank[r][step] for r in range(4)]
            for batch in local:
                assert len(batch) == 8
                counts = Counter(pids[i] for i in batch)
                assert len(counts) == 2 and set(counts.values()) == {4}
            # identities (and so images) do not overlap between ranks at a step
            id_sets = [{pids[i] for i in b} for b in local]
            assert sum(len(s) for s in id_sets) == len(set().union(*id_sets)) == 8
            assert sum(local, []) == global_batch


def test_state_dict_resume_skips_consumed_batches() -> None:
    pids = market_like_pids(3)
    sampler = PKSampler(pids, 16, 4, seed=11)
    sampler.set_epoch(4)
    full = list(sampler)
    state = sampler.state_dict(batch_in_epoch=3)
    assert state["epoch"] == 4 and state["seed"] == 11 and state["start_batch"] == 3

    resumed = PKSampler(pids, 16, 4, seed=0)  # seed comes from the state
    resumed.load_state_dict(state)
    resumed.set_epoch(4)  # the trainer re-enters the same epoch: position kept
    assert resumed.start_batch == 3
    assert list(resumed) == full[3 * 16 :]
    assert len(resumed) == len(full) - 3 * 16
    assert resumed.state_dict()["start_batch"] == 3
    resumed.set_epoch(5)  # next epoch starts from its first batch
    fresh = PKSampler(pids, 16, 4, seed=11)
    fresh.set_epoch(5)
    assert resumed.start_batch == 0 and list(resumed) == list(fresh)

    # a global position resumes on another world size
    dist = DistributedPKSampler(pids, 16, 4, seed=0, num_replicas=2, rank=1)
    dist.load_state_dict(state)
    dist.set_epoch(4)
    expected = [full[b * 16 + 8 : b * 16 + 16] for b in range(3, len(full) // 16)]
    assert list(dist) == sum(expected, [])

    with pytest.raises(ValueError, match="different setup"):
        PKSampler(pids, 32, 4, seed=11).load_state_dict(state)
    with pytest.raises(ValueError, match="outside"):
        sampler.state_dict(batch_in_epoch=sampler.num_batches + 1)


def test_invalid_configurations_raise_named_errors() -> None:
    pids = [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="not a multiple of num_instances"):
        PKSampler(pids, batch_size=6, num_instances=4, seed=0)
    with pytest.raises(ValueError, match="larger than batch_size"):
        PKSampler(pids, batch_size=4, num_instances=8, seed=0)
    with pytest.raises(ValueError, match="only 3 identities"):
        PKSampler(pids, batch_size=8, num_instances=2, seed=0)
    with pytest.raises(ValueError, match="cannot be split evenly over 2 ranks"):
        DistributedPKSampler(pids, batch_size=6, num_instances=2, seed=0, num_replicas=2, rank=0)
    with pytest.raises(ValueError, match="rank 2 outside"):
        DistributedPKSampler(pids, batch_size=4, num_instances=2, seed=0, num_replicas=2, rank=2)
