"""CLIP-ReID whose image stage keeps learning the prompts (a small variant; the worked example of adding a method in
docs/extending.md: this module and conf/method/clipreid_joint_prompts.yaml are all it took).

Stage 1 is CLIP-ReID's. In stage 2 the text encoder stays frozen but the per-identity prompt tokens train on with
the image encoder: the image-to-text term compares f_proj with the text features of the *current* prompts,
recomputed every step, instead of a classifier fixed at the start of the stage.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from reid.methods.base import StagePlan, Toolkit, register_method
from reid.methods.clipreid import ClipReID
from reid.methods.stages import image_stage


def live_text_classifier(kit: Toolkit, chunk: int):
    """() -> T (N_ids × D) from the current prompts, with gradient to them (the text encoder itself is frozen)."""
    prompt, text = kit.system["prompt"], kit.system["text"]

    def classifier() -> torch.Tensor:
        parts = []
        for start in range(0, prompt.num_classes, chunk):
            labels = torch.arange(start, min(start + chunk, prompt.num_classes), device=kit.device)
            parts.append(text(prompt(labels), prompt.eot_index).float())
        return torch.cat(parts)

    return classifier


@register_method
class ClipReIDJointPrompts(ClipReID):
    name = "clipreid_joint_prompts"

    def plans(self, kit: Toolkit, stages: Sequence[str]) -> list[StagePlan]:
        def stage2():
            prompt, text = kit.system["prompt"], kit.system["text"]
            for p in text.parameters():
                p.requires_grad_(False)
            prompt.cls_ctx.requires_grad_(True)
            classifier = live_text_classifier(kit, kit.settings["stage2"].batch_size)
            return image_stage(kit, "stage2", classifier, extra_trainable=[("prompt.cls_ctx", prompt.cls_ctx)])

        return [p if p.name != "stage2" else StagePlan("stage2", stage2) for p in super().plans(kit, stages)]
