"""CLIP-ReID / SVLL-ReID checkpoints import into run folders whose descriptors equal CLIP-ReID's own eval forward.

Every layout the importer supports, on generated checkpoints in the public key layout (clipreid_checkpoints.py):
ViT x {stride 16, 12} x {no SIE, camera, view, camera+view}, VeRi's 256x256 input, RN50 with and without an SIE
table, the image-only baseline, a DDP-saved file and SVLL-ReID's two head sets. For each: the architecture read off
the shapes, ``load_run(out).extract(records, flip=False)`` against an independent forward of the same weights on
open_clip's modules (max |difference| <= 1e-4, float32, CPU), and import -> export format=clipreid giving back the
identical state dict.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reid.data.records import ImageRecord
from reid.engine.checkpoint import Checkpointer
from reid.import_weights import WeightsImportError, import_checkpoint
from reid.inference import load_run
from reid.weights.clipreid_layout import LayoutError, strip_ddp_prefix
from reid.weights.export import clipreid_state_dict
from tests.weights.clipreid_checkpoints import Spec, reference_descriptor
from tests.weights.clipreid_checkpoints import clipreid_state_dict as generated

ROOT = Path(__file__).resolve().parents[2]
VIT_MEAN, RN50_MEAN = (0.5, 0.5, 0.5), (0.485, 0.456, 0.406)
VIT_STD, RN50_STD = (0.5, 0.5, 0.5), (0.229, 0.224, 0.225)

# name: (layout, --dataset (None: inferred), SIE reading expected, importer options)
LAYOUTS = {
    "vit-s16": (Spec(), None, None, {}),
    "vit-s16-camera": (Spec(sie_rows=6), "market1501", "camera", {"sie_coefficient": 1.0}),
    "vit-s16-view-veri": (Spec(size=(256, 256), sie_rows=8), "veri776", "view", {}),
    "vit-s16-both-veri": (Spec(size=(256, 256), sie_rows=160), "veri776", "both", {}),
    "vit-s12": (Spec(stride=12), "market1501", None, {"neck_feat": "after"}),
    "vit-s12-camera": (Spec(stride=12, sie_rows=6), "market1501", "camera", {"sie_coefficient": 1.0}),
    "vit-s12-view-veri": (Spec(stride=12, size=(256, 256), sie_rows=8), "veri776", "view", {}),
    "vit-s12-both-veri": (Spec(stride=12, size=(256, 256), sie_rows=160), "veri776", "both", {"neck_feat": "after"}),
    "rn50": (Spec(arch="rn50"), "market1501", None, {}),
    "rn50-with-sie-table": (Spec(arch="rn50", sie_rows=6), "market1501", None, {}),
    "vit-baseline": (Spec(text=False), "market1501", None, {}),
    "vit-ddp-saved": (Spec(sie_rows=6, ddp=True), "market1501", "camera", {}),
}


def _images(folder: Path, size: tuple[int, int], n: int = 4, seed: int = 0) -> list[ImageRecord]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        path = folder / f"{i:04d}_c{i % 3 + 1}s1_000001_00.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        records.append(ImageRecord(str(path), pid=i, camid=i % 3, viewid=(i * 5) % 8))
    return records


def _normalised(records: list[ImageRecord], mean, std) -> torch.Tensor:
    x = torch.stack([torch.from_numpy(np.array(Image.open(r.path).convert("RGB"))).permute(2, 0, 1) for r in records])
    return (x.float() / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Every layout generated, saved and imported once (module scope: the tests below share them)."""
    base = tmp_path_factory.mktemp("clipreid_import")
    done = {}
    for seed, (name, (spec, dataset, _, options)) in enumerate(LAYOUTS.items()):
        sd = generated(spec, seed=seed)
        path = base / f"{name}_60.pth"
        torch.save(sd, path)
        result = import_checkpoint("clipreid", path, base / name, dataset=dataset, **options)
        done[name] = (spec, sd, result)
    return base, done


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_descriptors_equal_clipreids_eval_forward(imported, name):
    base, done = imported
    spec, sd, result = done[name]
    _, dataset, sie, options = LAYOUTS[name]
    records = _images(base / f"{name}_images", spec.size)
    trained = load_run(result.out_dir, device="cpu", root_dir=ROOT)
    ours = trained.extract(records, flip=False)
    arch_is_vit = spec.arch == "vit"
    x = _normalised(records, VIT_MEAN if arch_is_vit else RN50_MEAN, VIT_STD if arch_is_vit else RN50_STD)
    cams = torch.tensor([r.camid for r in records])
    views = torch.tensor([r.viewid for r in records])
    reference = reference_descriptor(
        sd, spec, x, cams, views, sie=sie, num_views=8 if sie == "both" else 1,
        coefficient=options.get("sie_coefficient", 3.0), neck_feat=options.get("neck_feat", "before"),
    )
    assert ours.shape == (len(records), spec.f_last + spec.proj)
    assert float((ours - reference).abs().max()) <= 1e-4
    if sie is not None:  # SIE really reads the ids: other cameras / views give other descriptors
        shuffled = [r._replace(camid=(r.camid + 1) % 3, viewid=(r.viewid + 1) % 8) for r in records]
        assert float((trained.extract(shuffled, flip=False) - ours).abs().max()) > 1e-3


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_the_architecture_is_read_off_the_shapes(imported, name):
    _, done = imported
    spec, _, result = done[name]
    _, dataset, sie, _ = LAYOUTS[name]
    cfg = load_run(result.out_dir, device="cpu", root_dir=ROOT).config
    assert result.dataset == (dataset or "market1501") and tuple(cfg.dataset.size) == spec.size
    assert result.sie == sie and result.model_spec["num_classes"] == spec.num_ids
    assert cfg.method.name == ("clipreid" if spec.text else "baseline")
    assert cfg.backbone.pretrained is None and cfg.backbone.config is not None  # rebuilt without any weight file
    text = "\n".join(result.lines)
    assert f"identities:  {spec.num_ids}" in text
    if spec.arch == "vit":
        assert cfg.backbone.stride == spec.stride and f"stride {spec.stride}" in text
        assert cfg.backbone.mid_depth == spec.layers - 1
    if sie == "both":
        assert (result.model_spec["num_cams"], result.model_spec["num_views"]) == (20, 8)
    if name == "rn50-with-sie-table":
        assert any("never uses" in n and "dropped" in n for n in result.notes)
        assert not cfg.backbone.sie.camera and not cfg.backbone.sie.view
    if dataset is None:
        assert any("assuming market1501" in n for n in result.notes)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_export_gives_back_the_identical_state_dict(imported, name):
    _, done = imported
    _, sd, result = done[name]
    exported = clipreid_state_dict(Checkpointer.load(result.checkpoint))
    original = strip_ddp_prefix(sd)
    assert sorted(exported) == sorted(original)
    for key, value in original.items():
        assert exported[key].dtype == value.dtype and torch.equal(exported[key], value), key


def test_the_prompts_keep_clipreids_68_suffix_rows_and_use_them_up_to_eot(imported):
    _, done = imported
    _, sd, result = done["vit-s16"]
    trained = load_run(result.out_dir, device="cpu", root_dir=ROOT)
    prompt = trained.system["prompt"]
    assert torch.equal(prompt.suffix, sd["prompt_learner.token_suffix"]) and prompt.suffix.shape[1] == 68
    labels = torch.tensor([0, 3])
    prompts = prompt(labels)
    assert prompts.shape[1] == 12  # SOT a photo of a X X X X person . EOT: truncated after EOT (exact under the mask)
    torch.testing.assert_close(prompts[:, 5:9], sd["prompt_learner.cls_ctx"][labels], rtol=0, atol=0)


def test_svll_checkpoints_keep_their_heads_for_fine_tuning(tmp_path):
    for ssl, heads in (("simclr", {"ssl_image.projector", "ssl_text.projector"}), ("simsiam", {"ssl_image.predictor"})):
        spec = Spec(ssl=ssl, stride=12, sie_rows=6)
        sd = generated(spec, seed=3)
        torch.save(sd, tmp_path / f"{ssl}.pth")
        result = import_checkpoint("svll", tmp_path / f"{ssl}.pth", tmp_path / ssl, sie_coefficient=1.0)
        system = Checkpointer.load(result.checkpoint)["system"]
        assert {".".join(k.split(".")[:2]) for k in system if k.startswith("ssl_")} == heads
        assert f"SVLL SSL heads: {ssl}" in "\n".join(result.lines)
        cfg = load_run(result.out_dir, device="cpu", root_dir=ROOT).config
        assert cfg.ssl.name == ssl and cfg.imported.kind == "svll"
        exported = clipreid_state_dict(Checkpointer.load(result.checkpoint))
        assert sorted(exported) == sorted(sd) and all(torch.equal(exported[k], sd[k]) for k in sd)
        with pytest.raises(WeightsImportError, match="import it with `python -m reid.import_weights svll`"):
            import_checkpoint("clipreid", tmp_path / f"{ssl}.pth", tmp_path / f"{ssl}-as-clipreid")
    torch.save(generated(Spec(), seed=4), tmp_path / "plain.pth")
    with pytest.raises(WeightsImportError, match="it is a CLIP-ReID checkpoint"):
        import_checkpoint("svll", tmp_path / "plain.pth", tmp_path / "plain-as-svll")


def test_a_file_of_another_layout_lists_the_missing_and_unexpected_keys(tmp_path):
    sd = generated(Spec(sie_rows=6), seed=5)
    del sd["bottleneck_proj.running_var"], sd["image_encoder.ln_post.bias"]
    sd["image_encoder.extra_token"] = torch.zeros(3)
    sd["classifier_proj.weight"] = torch.zeros(7, 31)
    torch.save(sd, tmp_path / "odd.pth")
    with pytest.raises(LayoutError) as err:
        import_checkpoint("clipreid", tmp_path / "odd.pth", tmp_path / "out")
    text = str(err.value)
    assert "missing keys: bottleneck_proj.running_var, image_encoder.ln_post.bias" in text
    assert "unexpected keys: image_encoder.extra_token" in text
    assert "wrong shapes: classifier_proj.weight (7, 31) (expected (7, 32))" in text
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(LayoutError, match="no CLIP image encoder.*groups \\[fc\\]"):
        import_checkpoint("clipreid", tmp_path / "other.pth", tmp_path / "out2")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_what_the_weights_cannot_say_fails_with_what_to_pass(tmp_path):
    torch.save(generated(Spec(size=(256, 256)), seed=6), tmp_path / "veri.pth")
    with pytest.raises(WeightsImportError, match="dataset=market1501's input 256x128 gives no such grid"):
        import_checkpoint("clipreid", tmp_path / "veri.pth", tmp_path / "a", dataset="market1501")
    torch.save(generated(Spec(sie_rows=5), seed=7), tmp_path / "five.pth")
    with pytest.raises(WeightsImportError, match="5 rows and dataset=market1501 has 6 cameras and 1 views.*--sie"):
        import_checkpoint("clipreid", tmp_path / "five.pth", tmp_path / "b")
    result = import_checkpoint("clipreid", tmp_path / "five.pth", tmp_path / "c", sie="camera")  # the user says so
    assert result.sie == "camera" and result.model_spec["num_cams"] == 5
    with pytest.raises(FileExistsError, match="not empty"):
        import_checkpoint("clipreid", tmp_path / "five.pth", tmp_path / "c", sie="camera")
    (tmp_path / "broken.pth").write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(WeightsImportError, match="cannot be read as a torch state dict"):
        import_checkpoint("clipreid", tmp_path / "broken.pth", tmp_path / "d")


def test_cli_prints_the_architecture_and_errors_are_one_line(tmp_path):
    torch.save(generated(Spec(stride=12, sie_rows=6), seed=8), tmp_path / "olp.pth")
    cmd = [sys.executable, "-m", "reid.import_weights", "clipreid", str(tmp_path / "olp.pth"), str(tmp_path / "run")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("stride 12 (overlapping patches)", "SIE:         camera, 6 rows", "identities:  7",
                 "NOTE: the SIE coefficient (CLIP-ReID's MODEL.SIE_COE) is not stored", "python -m reid.evaluate run="):
        assert line in done.stdout
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and again.stderr.startswith("error: ") and "Traceback" not in again.stderr
    assert "not empty; choose a new folder or pass --overwrite" in again.stderr
