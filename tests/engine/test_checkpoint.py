"""Atomic checkpoints and keep-last-N."""
import torch

from reid.engine.checkpoint import Checkpointer, latest_checkpoint, list_checkpoints


def test_keep_last_and_ordering(tmp_path):
    ck = Checkpointer(tmp_path, keep_last=2)
    for e in (1, 2, 3):
        ck.save({"x": torch.tensor(e)}, "stage1", e)
    for e in (1, 2):
        ck.save({"x": torch.tensor(10 + e)}, "stage2", e)
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["ckpt_stage1_e0002.pt", "ckpt_stage1_e0003.pt", "ckpt_stage2_e0001.pt", "ckpt_stage2_e0002.pt"]
    state = Checkpointer.load(latest_checkpoint(tmp_path))
    assert int(state["x"]) == 12 and state["stage"] == "stage2" and state["epoch"] == 2 and "rng" in state
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_checkpoint_names_file(tmp_path):
    bad = tmp_path / "ckpt_stage2_e0001.pt"
    bad.write_bytes(b"\x80\x02not a checkpoint")
    try:
        Checkpointer.load(bad)
    except RuntimeError as err:
        assert str(bad) in str(err)
    else:
        raise AssertionError("a corrupt checkpoint must raise")
