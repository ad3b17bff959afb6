"""docs/extending.md, example 2: a new method is one module in reid/methods/ and one yaml (clipreid_joint_prompts)."""
from __future__ import annotations

import torch

from reid.engine.checkpoint import Checkpointer
from reid.methods import method_class, registered_methods
from tests.extending.helpers import files_mentioning, train_smoke


def test_nothing_outside_its_module_and_its_yaml_was_needed():
    assert files_mentioning("clipreid_joint_prompts") == {
        "reid/methods/clipreid_joint_prompts.py", "conf/method/clipreid_joint_prompts.yaml",
    }
    assert "clipreid_joint_prompts" in registered_methods()  # found in reid/methods/ without a list to edit
    assert method_class("clipreid_joint_prompts").stages == {"stage1": "prompt", "stage2": "image"}


def _prompts(run_dir, stage: str) -> torch.Tensor:
    return Checkpointer.load(run_dir / "checkpoints" / f"ckpt_{stage}_e0001.pt")["system"]["prompt.cls_ctx"]


def test_its_image_stage_trains_the_prompts_where_clipreids_does_not(tmp_path):
    train_smoke(tmp_path / "joint", "logger=none", "method=clipreid_joint_prompts")
    train_smoke(tmp_path / "plain", "logger=none", "method=clipreid")
    joint, plain = tmp_path / "joint" / "run", tmp_path / "plain" / "run"
    assert torch.equal(_prompts(plain, "stage1"), _prompts(plain, "stage2"))      # CLIP-ReID: fixed in stage 2
    assert not torch.equal(_prompts(joint, "stage1"), _prompts(joint, "stage2"))  # the variant: still learning
    assert torch.equal(_prompts(joint, "stage1"), _prompts(plain, "stage1"))      # stage 1 is CLIP-ReID's
