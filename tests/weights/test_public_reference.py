"""At full size, against the public code itself: CLIP-ReID's and SVLL-ReID's own models, run on the CPU.

fixtures/public_layouts.json holds the keys and shapes of their ``build_transformer(...).state_dict()`` for seven
layouts (ViT-B/16 at stride 16, stride 12 with camera SIE, VeRi's 256x256 with camera x view SIE and the after-BN
descriptor, RN50, the ViT baseline, SVLL-ReID with SimCLR and with SimSiam heads); fixtures/public_descriptors.npz
their eval descriptors after ``load_param`` of the generated checkpoints used here. Both were made by
fixtures/make_public_reference.py from CLIP-ReID eb1898b and SVLL-ReID 048e905.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reid.data.records import ImageRecord
from reid.import_weights import import_checkpoint
from reid.inference import load_run
from tests.weights.clipreid_checkpoints import clipreid_state_dict, layout_shapes
from tests.weights.fixtures.make_public_reference import CAMS, VIEWS, images, layouts

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
LAYOUTS = {**layouts("clipreid"), **layouts("svll")}


def test_the_generator_writes_exactly_the_public_models_keys_and_shapes():
    public = json.loads((FIXTURES / "public_layouts.json").read_text())
    assert sorted(public) == sorted(LAYOUTS)
    for name, (_, spec, *_rest) in LAYOUTS.items():
        assert {k: list(v) for k, v in layout_shapes(spec).items()} == public[name], name


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_full_size_descriptors_equal_the_public_codes_eval_output(name, tmp_path):
    _, spec, fields, _, _, seed, ssl = LAYOUTS[name]
    _, size, _, sie_camera, sie_view, coefficient, neck_feat, dataset = fields
    path = tmp_path / f"{name}_60.pth"
    torch.save(clipreid_state_dict(spec, seed=seed), path)
    result = import_checkpoint(
        "svll" if ssl else "clipreid", path, tmp_path / "run", dataset="veri776" if dataset == "veri" else "market1501",
        sie_coefficient=coefficient, neck_feat=neck_feat,
    )
    path.unlink()  # a ViT-B/16 checkpoint is 0.6 GB: keep only the run folder's copy
    records = []
    for i, pixels in enumerate(images(seed, size)):
        file = tmp_path / f"{i}.png"
        Image.fromarray(pixels).save(file)
        records.append(ImageRecord(str(file), 0, CAMS[i], VIEWS[i]))
    ours = load_run(result.out_dir, device="cpu", root_dir=ROOT).extract(records, flip=False)
    public = torch.from_numpy(np.load(FIXTURES / "public_descriptors.npz")[name])
    assert ours.shape == public.shape
    assert float((ours - public).abs().max()) <= 1e-4
    if sie_camera or sie_view:
        assert result.sie == ("both" if sie_camera and sie_view else "camera")
