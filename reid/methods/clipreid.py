"""CLIP-ReID (docs/method.md §3, §4): stage 1 learns per-identity prompt tokens against the frozen CLIP, stage 2
fine-tunes the image encoder with ID, triplet and image-to-text terms against the fixed text classifier.
SVLL-ReID is this method with ``ssl=simclr``: its two SSL terms are loss terms of the two stages (docs/method.md §8).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from reid.methods.base import Method, StagePlan, Toolkit, register_method
from reid.methods.stages import freeze_text_side, image_stage, prompt_stage


@register_method
class ClipReID(Method):
    name = "clipreid"
    uses_text = True
    stages = {"stage1": "prompt", "stage2": "image"}

    def __init__(self) -> None:
        self.text_weights: torch.Tensor | None = None

    def plans(self, kit: Toolkit, stages: Sequence[str]) -> list[StagePlan]:
        plans = []
        if "stage1" in stages:
            plans.append(StagePlan("stage1", lambda: prompt_stage(kit, "stage1")))

        def stage2():
            # After stage 1, or on resume from its checkpoint (the prompts came with it): T is fixed from here on.
            self.text_weights = freeze_text_side(kit, kit.settings["stage2"].batch_size)
            return image_stage(kit, "stage2", self.text_weights)

        plans.append(StagePlan("stage2", stage2))
        return plans
