"""The CLIP fine-tuning baseline: one image stage, ID + triplet on the CLIP image encoder, no text side
(CLIP-ReID's train.py; docs/method.md §4.6). With ``ssl=simclr`` / ``ssl=simsiam`` it adds the vision SSL term."""
from __future__ import annotations

from collections.abc import Sequence

from reid.methods.base import Method, StagePlan, Toolkit, register_method
from reid.methods.stages import image_stage


@register_method
class Baseline(Method):
    name = "baseline"
    uses_text = False
    stages = {"stage2": "image"}

    def plans(self, kit: Toolkit, stages: Sequence[str]) -> list[StagePlan]:
        return [StagePlan("stage2", lambda: image_stage(kit, "stage2"))]
