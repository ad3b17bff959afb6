"""OpenAI's ViT CLIP files -> Hugging Face folders whose features equal open_clip's model loaded from the same file.

The files are made here the way OpenAI's are: open_clip's CLIP class (OpenAI's own architecture, quick-GELU),
randomly initialised, saved as a TorchScript archive with fp16 weights (like ViT-B-16.pt) and as a plain state dict.
The reference is open_clip's ``load_openai_model`` on the same file.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from reid.import_weights import WeightsImportError, import_openai
from reid.models.clip_loader import load_clip
from reid.models.rn50 import open_clip_module
from reid.models.tokenizer import tokenize
from reid.weights.openai_files import read_openai_file

TEXTS = ["A photo of a X X X X person.", "A photo of a X X X X vehicle.", "a person in a red jacket"]


def _random_openai_vit(seed: int = 0) -> nn.Module:
    """open_clip's CLIP in OpenAI's ViT family, small: every float tensor random (nothing at its init)."""
    m = open_clip_module("model")
    clip = m.CLIP(
        embed_dim=48,
        vision_cfg=m.CLIPVisionCfg(layers=2, width=128, patch_size=16, image_size=64, head_width=64),
        text_cfg=m.CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=2),
        quick_gelu=True,
    )
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in clip.named_parameters():
            scale = t[0].numel() ** -0.5 if t.dim() > 1 else 0.1
            t.copy_(
                (1.0 if name.endswith(("ln_1.weight", "ln_2.weight")) else 0.0)
                + torch.randn(t.shape, generator=g) * scale
            )
        clip.logit_scale.fill_(4.0)
    return clip.eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """OpenAI's weights as it ships them (conv / linear / attention / projections in fp16), in both file kinds.

    (open_clip's loader rounds every file to fp16 before use, so an fp32 file would not be a fair reference.)
    """
    base = tmp_path_factory.mktemp("openai")
    fp16 = _random_openai_vit()
    open_clip_module("model").convert_weights_to_lp(fp16, dtype=torch.float16)
    mask = fp16._buffers.pop("attn_mask")  # OpenAI's model keeps the causal mask as a plain attribute, not a buffer
    fp16.attn_mask = mask
    plain, scripted = base / "plain.pt", base / "ViT-tiny.pt"
    torch.save(fp16.state_dict(), plain)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.jit.script(fp16).save(str(scripted))
    return {"plain": plain, "torchscript": scripted}


def _open_clip_reference(path: Path) -> nn.Module:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        return open_clip_module("openai").load_openai_model(str(path), precision="fp32", device="cpu").eval()


@pytest.mark.parametrize("kind", ["plain", "torchscript"])
def test_hf_folder_features_equal_open_clips(files, kind, tmp_path):
    out = tmp_path / "hf"
    lines = import_openai(files[kind], out)
    assert "wrote Hugging Face folder" in lines[-2]
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= {p.name for p in out.iterdir()}
    from transformers import CLIPModel, CLIPTokenizer

    hf = CLIPModel.from_pretrained(str(out), local_files_only=True, attn_implementation="eager").eval()
    assert {p.dtype for p in hf.parameters()} == {torch.float32}
    ref = _open_clip_reference(files[kind])
    images = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    ids = tokenize(CLIPTokenizer.from_pretrained(str(out), local_files_only=True), TEXTS)
    ref_ids = open_clip_module("tokenizer").tokenize(TEXTS)
    assert torch.equal(ids, ref_ids)  # the same 77 ids, zero padding included
    with torch.no_grad():
        image = hf.get_image_features(pixel_values=images)
        text = hf.get_text_features(input_ids=ids)
        image = getattr(image, "pooler_output", image)
        text = getattr(text, "pooler_output", text)
        torch.testing.assert_close(image, ref.encode_image(images), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(text, ref.encode_text(ref_ids), atol=1e-5, rtol=1e-5)
        assert float(hf.logit_scale) == pytest.approx(float(ref.logit_scale))


def test_backbone_pretrained_takes_the_pt_file_itself(files, tmp_path):
    import_openai(files["torchscript"], tmp_path / "hf")
    from_folder = load_clip(str(tmp_path / "hf"), attn_implementation="eager")
    from_file = load_clip(str(files["torchscript"]), attn_implementation="eager")
    a, b = from_folder.state_dict(), from_file.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fp16_archive_weights_arrive_as_fp32(files):
    sd = read_openai_file(files["torchscript"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        raw = torch.jit.load(str(files["torchscript"])).state_dict()
    assert raw["visual.conv1.weight"].dtype == torch.float16  # the archive really holds fp16 weights
    assert {v.dtype for v in sd.values() if v.is_floating_point()} == {torch.float32}
    assert torch.equal(sd["visual.conv1.weight"], raw["visual.conv1.weight"].float())


def test_resnets_and_foreign_files_are_refused_with_what_to_do(tmp_path):
    torch.save({"visual.attnpool.positional_embedding": torch.zeros(50, 64)}, tmp_path / "RN50.pt")
    with pytest.raises(WeightsImportError, match="backbone=rn50 backbone.pretrained="):
        import_openai(tmp_path / "RN50.pt", tmp_path / "out")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(WeightsImportError, match="not an OpenAI CLIP state dict"):
        import_openai(tmp_path / "other.pt", tmp_path / "out2")
    with pytest.raises(FileNotFoundError, match="no such file"):
        import_openai(tmp_path / "missing.pt", tmp_path / "out3")
