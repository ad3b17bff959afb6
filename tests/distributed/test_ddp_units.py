"""reid.engine.distributed and the DDP-facing parts of the stage-2 step and the stage loop.

The multi-process checks run once, in two gloo processes started with
``torch.multiprocessing.spawn`` (tests/distributed/ddp_workers.py); each test below
reads one part of what the ranks reported. The rest runs in this process.
"""
from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from reid.engine.distributed import DistContext, gather_features, init_distributed, shard

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # spawned children inherit sys.path and import the worker module by name
    sys.path.insert(0, str(HERE))
import ddp_workers  # noqa: E402

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """What each of two gloo ranks saw running ddp_workers.run_checks."""
    out = tmp_path_factory.mktemp("ddp_units")
    mp.spawn(ddp_workers.run_checks, args=(WORLD, _free_port(), str(out)), nprocs=WORLD, join=True)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]


# ----------------------------------------------------------------------------- two gloo processes
def test_init_from_torchrun_environment(ranks):
    for r, seen in enumerate(ranks):
        assert (seen["rank"], seen["world_size"], seen["backend"], seen["device"]) == (r, WORLD, "gloo", "cpu")
        assert seen["owns_group"] is True


def test_gather_features_restores_order_of_uneven_shuffled_shards(ranks):
    n = ddp_workers.GATHER_N
    expected = [ddp_workers.gather_row(i) for i in range(n)]
    for seen in ranks:
        got = seen["gather"]
        assert got["feats"] == expected
        assert got["pids"] == [100 + i for i in range(n)]
        assert got["camids"] == [i % 3 for i in range(n)]
        assert got["dtype"] == "torch.float32"


def test_gather_features_of_strided_shards(ranks):
    assert ranks[0]["strided"]["local"] == [0, 2, 4, 6, 8]
    assert ranks[1]["strided"]["local"] == [1, 3, 5, 7]
    for seen in ranks:
        assert seen["strided"]["feats"] == list(range(9))
        assert seen["strided"]["pids"] == list(range(9))


def test_gather_features_with_an_empty_shard(ranks):
    for seen in ranks:
        assert seen["empty_shard"] == {"shape": [1, 4], "pids": [5]}


def test_gather_features_refuses_overlapping_indices(ranks):
    for seen in ranks:
        assert "not a permutation" in seen["duplicate_index"]


def test_broadcast_module_state_copies_parameters_and_buffers(ranks):
    zero, one = ranks[0]["broadcast_state"], ranks[1]["broadcast_state"]
    assert set(zero) >= {"0.weight", "1.running_mean", "1.running_var", "1.num_batches_tracked"}
    assert zero == one


def test_small_collectives(ranks):
    for seen in ranks:
        assert seen["broadcast_object"] == {"from": 0}
        assert seen["all_gather_object"] == [0, 10]
        assert seen["any_flags"] == [True, False]
        assert seen["sum_stats"] == {"sums": {"loss": 3.0, "acc": 1.0}, "count": 3}


def test_nonfinite_loss_on_one_rank_is_skipped_by_all(ranks):
    zero, one = ranks[0]["nonfinite"], ranks[1]["nonfinite"]
    assert zero["skipped"] == one["skipped"] == 1
    assert zero["weights"] == one["weights"]
    assert zero["loss_mean"] == one["loss_mean"]  # the epoch mean is over both ranks' good steps


def test_sigterm_on_one_rank_stops_all_at_the_same_step(ranks):
    for seen in ranks:
        assert seen["sigterm"].startswith("SIGTERM at sigterm epoch 1 step 2")
        assert seen["sigterm_checkpoints"] == ["ckpt_sigterm_e0001.pt"]  # rank 0's, the only writer
        assert seen["sigterm_batch"] == 2


def test_stage2_net_under_ddp_needs_no_unused_parameter_search(ranks):
    for seen in ranks:
        got = seen["ddp_stage2"]
        assert got["grads_missing"] == []
        assert got["identical_across_ranks"] is True
        assert "ssl_vis" in got["terms"] and "i2t" in got["terms"]


# ----------------------------------------------------------------------------- one process
def test_single_process_context(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed, ctx.owns_group) == (0, 1, True, False, False)
    assert ctx.device == torch.device("cpu")
    assert ctx.broadcast_object("x") == "x" and ctx.all_gather_object(3) == [3]
    assert ctx.any_flags(True, False) == (True, False)
    assert ctx.sum_stats({"a": 2.0}, 4) == ({"a": 2.0}, 4)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert init_distributed("cpu").world_size == 1
    state = torch.get_rng_state()
    ctx.decorrelate_rng(0)  # rank 0 / single process keeps its stream
    assert torch.equal(torch.get_rng_state(), state)


def test_distributed_context_gives_ranks_their_own_streams():
    draws = []
    for rank in (1, 2):
        torch.manual_seed(0)
        DistContext(rank=rank, world_size=3).decorrelate_rng(7, 0)
        draws.append(torch.rand(3))
    assert not torch.equal(draws[0], draws[1])


def test_gather_features_without_group_reorders_and_validates():
    feats = torch.tensor([[2.0], [0.0], [1.0]])
    f, p, c = gather_features(feats, [12, 10, 11], [2, 0, 1], [2, 0, 1])
    assert f[:, 0].tolist() == [0.0, 1.0, 2.0] and p.tolist() == [10, 11, 12] and c.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="same rows"):
        gather_features(feats, [1, 2], [0, 0], [0, 1, 2])
    with pytest.raises(ValueError, match="permutation"):
        gather_features(feats, [1, 2, 3], [0, 0, 0], [0, 0, 1])


def test_shard_is_strided():
    items, positions = shard(list("abcde"), DistContext(rank=1, world_size=2))
    assert items == ["b", "d"] and positions.tolist() == [1, 3]
    items, positions = shard(list("ab"), DistContext(rank=0, world_size=1))
    assert items == ["a", "b"] and positions.tolist() == [0, 1]


@pytest.mark.parametrize(
    "sie, ssl",
    [(False, None), (True, None), (False, "simclr"), (True, "simsiam"), (False, "simsiam_projector")],
    ids=["plain", "sie", "simclr", "sie-simsiam", "simsiam-projector"],
)
def test_every_trainable_stage2_parameter_gets_a_gradient(sie, ssl):
    """Why the pipeline's DDP needs no find_unused_parameters: one forward reaches every trainable parameter."""
    net, objective = ddp_workers.tiny_stage2(sie, ssl)
    _, ssl_augment = ddp_workers.augments()
    step = ddp_workers.tiny_step(net, objective, sie, ssl_augment if ssl else None)
    step(ddp_workers.tiny_batch(0))["loss"].backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert frozen == ["model.head.bn.bias", "model.head_proj.bn.bias"]


def test_stage2_net_refuses_views_without_head():
    net, _ = ddp_workers.tiny_stage2(False, None)
    images = torch.zeros(2, 3, *ddp_workers.IMAGE_SIZE)
    with pytest.raises(ValueError, match="without an SSL head"):
        net(images, None, None, (images, images))
    out, ssl_loss = net(images)
    assert ssl_loss is None and len(out.logits) == 2

