"""backbone=rn50: OpenAI-layout weights load into open_clip's ModifiedResNet + HF's CLIP text model and reproduce
open_clip's own CLIP forward; CLIP-ReID's RN50 changes (last stride 1, resized attention-pool table, g3/g4/gp).

No downloads: the reference is open_clip's ``CLIP`` class itself (imported through reid.models.rn50's alias
package, as the loader does), randomly initialised and saved in OpenAI's layout (a plain state dict, and a
TorchScript archive like OpenAI's RN50.pt).
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reid.models.clip_loader import ModelWeightsError
from reid.models.reid_model import ReIDModel
from reid.models.rn50 import (
    ClipRN50,
    FrozenBatchNorm2d,
    RN50Encoder,
    RN50Spec,
    _load_utils,
    build_rn50_clip,
    layer4_grid,
    load_openai_rn50,
    open_clip_module,
    rn50_backbone,
)
from reid.models.text_encoder import TextEncoder

# "A photo of a X X X X person." (docs/method.md §2.5), EOT at index 11, zero padding as OpenAI's tokenizer.
TEMPLATE_IDS = [49406, 320, 1125, 539, 320, 343, 343, 343, 343, 2533, 269, 49407]
SMALL = dict(layers=(1, 2, 1, 2), width=16, embed_dim=64, text_width=128, text_layers=2)


def _randomise(module: nn.Module, seed: int) -> None:
    """Every float parameter and buffer random (open_clip zero-inits bn3.weight, which would hide the residual path)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point() or name.endswith("attn_mask"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("bn1.weight", "bn2.weight", "bn3.weight", ".1.weight")) and t.dim() == 1:
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
            else:
                # fan-in scaled, so attention is far from uniform (a q/k mix-up must show) and activations stay O(1)
                t.copy_(torch.randn(t.shape, generator=g) * (t[0].numel() ** -0.5 if t.dim() > 1 else 0.1))


def _reference_clip(seed: int = 0) -> nn.Module:
    """open_clip's CLIP in the RN50 family (quick-GELU, OpenAI head counts), small enough for a CPU test."""
    m = open_clip_module("model")
    s = RN50Spec(**SMALL)
    clip = m.CLIP(
        embed_dim=s.embed_dim,
        vision_cfg=m.CLIPVisionCfg(layers=s.layers, width=s.width, image_size=224, head_width=64),
        text_cfg=m.CLIPTextCfg(context_length=77, vocab_size=49408, width=s.text_width, heads=s.text_heads,
                               layers=s.text_layers),
        quick_gelu=True,
    )
    _randomise(clip, seed)
    return clip.eval()


@pytest.fixture(scope="module")
def reference() -> nn.Module:
    return _reference_clip()


@pytest.fixture(scope="module")
def saved(reference, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rn50") / "RN50.pt"
    sd = dict(reference.state_dict())
    sd["input_resolution"] = torch.tensor(224)  # the extra ints OpenAI's archive carries
    sd["context_length"] = torch.tensor(77)
    sd["vocab_size"] = torch.tensor(49408)
    torch.save(sd, path)
    return path


@pytest.fixture(scope="module")
def loaded(saved) -> ClipRN50:
    return load_openai_rn50(saved, attn_implementation="eager").eval()


def _text_ids() -> torch.Tensor:
    ids = torch.zeros(3, 77, dtype=torch.long)
    ids[0, :12] = torch.tensor(TEMPLATE_IDS)
    ids[1, :12] = torch.tensor(TEMPLATE_IDS)
    ids[1, 9] = 5299  # vehicle
    ids[2, :6] = torch.tensor([49406, 1125, 539, 320, 2533, 49407])  # EOT at another position
    return ids


def _reference_reid_features(visual: nn.Module, x: torch.Tensor, grid: tuple[int, int]):
    """CLIP-ReID's RN50 forward written out independently: stride-1 layer4, bilinear 7x7 -> grid table, taps."""
    v = copy.deepcopy(visual)
    v.layer4[0].avgpool = nn.Identity()
    v.layer4[0].downsample._modules["-1"] = nn.Identity()
    table = v.attnpool.positional_embedding.detach()
    side = int((table.shape[0] - 1) ** 0.5)
    g = table[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    g = F.interpolate(g, size=grid, mode="bilinear", align_corners=False)
    g = g.permute(0, 2, 3, 1).reshape(-1, table.shape[1])
    v.attnpool.positional_embedding = nn.Parameter(torch.cat([table[:1], g]))
    h = v.layer2(v.layer1(v.stem(x)))
    x3 = v.layer3(h)
    x4 = v.layer4(x3)
    return x3.mean((2, 3)), x4.mean((2, 3)), v.attnpool(x4), tuple(x4.shape[-2:])


def test_open_clip_code_is_used_without_its_package_init():
    mr = open_clip_module("modified_resnet")
    assert Path(mr.__file__).parent.name == "open_clip" and Path(mr.__file__).name == "modified_resnet.py"
    assert "open_clip" not in sys.modules and "torchvision" not in sys.modules
    assert ClipRN50(RN50Spec(**SMALL)).visual.__class__ is mr.ModifiedResNet


def test_open_clip_utils_work_with_the_frozen_batchnorm_stand_in():
    utils = open_clip_module("utils")
    assert utils.FrozenBatchNorm2d is FrozenBatchNorm2d
    bn = nn.BatchNorm2d(4)
    _randomise(bn, 3)
    bn.eval()
    frozen = utils.freeze_batch_norm_2d(copy.deepcopy(bn))
    assert isinstance(frozen, FrozenBatchNorm2d)
    x = torch.randn(2, 4, 5, 3)
    torch.testing.assert_close(frozen(x), bn(x), atol=1e-6, rtol=1e-6)
    assert utils.to_2tuple(3) == (3, 3)


def test_an_unexpected_torchvision_import_is_refused(tmp_path):
    (tmp_path / "utils.py").write_text(
        "from torchvision.ops.misc import FrozenBatchNorm2d\nfrom torchvision.ops import nms\nX = 1\n"
    )
    with pytest.raises(ImportError, match="torchvision.ops import nms"):
        _load_utils(tmp_path, "fake_pkg.utils")
    (tmp_path / "utils.py").write_text("def f():\n    import torchvision\n")
    with pytest.raises(ImportError, match="import torchvision"):
        _load_utils(tmp_path, "fake_pkg.utils")
    (tmp_path / "utils.py").write_text("from torchvision.ops.misc import FrozenBatchNorm2d\nX = FrozenBatchNorm2d\n")
    assert _load_utils(tmp_path, "fake_pkg.utils").X is FrozenBatchNorm2d
    (tmp_path / "utils.py").write_text("X = 2\n")  # a future open_clip without torchvision loads as is
    assert _load_utils(tmp_path, "fake_pkg.utils").X == 2


def test_spec_read_off_openai_layout(reference):
    assert RN50Spec.from_state_dict(reference.state_dict()) == RN50Spec(**SMALL)
    full = RN50Spec()
    assert (full.layers, full.width, full.embed_dim, full.vision_heads) == ((3, 4, 6, 3), 64, 1024, 32)
    assert (full.text_width, full.text_heads, full.text_layers, full.context_length) == (512, 8, 12, 77)
    cfg = full.text_config()
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_hidden_layers, cfg.projection_dim) == (512, 8, 12, 1024)
    assert cfg.hidden_act == "quick_gelu" and cfg.intermediate_size == 2048


def test_image_features_equal_open_clip_at_native_resolution(reference, loaded):
    """last_stride=2 and 224x224 keeps CLIP's own network: token 0 of the attention pool is encode_image."""
    enc = RN50Encoder(copy.deepcopy(loaded.visual), (224, 224), last_stride=2).eval()
    assert enc.visual.attnpool.positional_embedding.shape == (50, 512)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        _, _, gp = enc(x)
        ref = reference.encode_image(x)
    torch.testing.assert_close(gp, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("size,grid", [((256, 128), (16, 8)), ((256, 256), (16, 16))])
@pytest.mark.parametrize("train", [False, True])
def test_reid_image_features_equal_reference(reference, loaded, size, grid, train):
    enc = RN50Encoder(copy.deepcopy(loaded.visual), size).train(train)
    ref_visual = copy.deepcopy(reference.visual).train(train)
    assert layer4_grid(size) == grid
    assert enc.visual.attnpool.positional_embedding.shape == (grid[0] * grid[1] + 1, 512)
    x = torch.randn(3, 3, *size)
    with torch.no_grad():
        ours = enc(x, torch.tensor([0, 1, 2]), torch.tensor([0, 0, 0]))  # ids are accepted and ignored
        *ref, ref_grid = _reference_reid_features(ref_visual, x, grid)
    assert ref_grid == grid
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert [t.shape for t in ours] == [(3, 256), (3, 512), (3, 64)]


def test_text_features_equal_open_clip(reference, loaded):
    ids = _text_ids()
    enc = TextEncoder(loaded.text_model, loaded.text_projection).eval()
    with torch.no_grad():
        ours = enc(loaded.text_model.embeddings.token_embedding(ids), ids.argmax(dim=1))
        ref = reference.encode_text(ids)
        template_only = enc(loaded.text_model.embeddings.token_embedding(ids[:2, :12]), 11)  # truncated after EOT
    assert ours.shape == (3, 64)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(template_only, ref[:2], atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_archive_like_openai_rn50_pt(reference, tmp_path):
    path = tmp_path / "RN50.pt"
    torch.jit.script(reference).save(str(path))
    model = load_openai_rn50(path, attn_implementation="eager").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        gp = RN50Encoder(model.visual, (224, 224), last_stride=2)(x)[2]
        text = model.text(input_ids=_text_ids()).text_embeds  # HF's own forward, pooled at the EOT id
        torch.testing.assert_close(gp, reference.encode_image(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(text, reference.encode_text(_text_ids()), atol=1e-5, rtol=1e-5)


def test_fp16_weights_are_loaded_as_fp32(reference, tmp_path):
    path = tmp_path / "RN50_half.pt"
    torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in reference.state_dict().items()}, path)
    model = load_openai_rn50(path)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    torch.testing.assert_close(
        model.visual.conv1.weight, reference.visual.conv1.weight.half().float(), atol=0, rtol=0
    )


def test_missing_weights_name_the_path_and_the_setting(tmp_path):
    missing = tmp_path / "nowhere" / "RN50.pt"
    with pytest.raises(ModelWeightsError) as err:
        build_rn50_clip(str(missing))
    assert str(missing) in str(err.value) and "backbone.pretrained=/path/RN50.pt" in str(err.value)
    with pytest.raises(ValueError, match="backbone.pretrained"):
        build_rn50_clip(None, None)


def test_a_state_dict_of_another_model_is_refused(tmp_path):
    path = tmp_path / "vit.pt"
    torch.save({"visual.conv1.weight": torch.zeros(768, 3, 16, 16)}, path)
    with pytest.raises(ValueError, match="not an OpenAI CLIP ResNet"):
        load_openai_rn50(path)


@pytest.mark.parametrize("size,grid", [((256, 128), (16, 8)), ((256, 256), (16, 16))])
def test_full_size_rn50_shapes_in_the_reid_model(size, grid):
    torch.manual_seed(0)
    visual = open_clip_module("modified_resnet").ModifiedResNet([3, 4, 6, 3], output_dim=1024, heads=32, width=64)
    assert visual.attnpool.positional_embedding.shape == (50, 2048)
    enc = RN50Encoder(visual, size)
    assert (enc.width, enc.proj_dim) == (2048, 1024)
    assert enc.visual.attnpool.positional_embedding.shape == (grid[0] * grid[1] + 1, 2048)  # 129 / 257 rows
    assert isinstance(enc.visual.layer4[0].avgpool, nn.Identity)
    assert isinstance(enc.visual.layer4[0].downsample._modules["-1"], nn.Identity)
    grids = {}
    enc.visual.layer3.register_forward_hook(lambda m, i, o: grids.__setitem__("layer3", tuple(o.shape[1:])))
    enc.visual.layer4.register_forward_hook(lambda m, i, o: grids.__setitem__("layer4", tuple(o.shape[1:])))
    model = ReIDModel(enc, num_classes=5, classifier_std=0.001).train()
    x = torch.randn(2, 3, *size)
    out = model(x)
    assert grids == {"layer3": (1024, *grid), "layer4": (2048, *grid)}
    assert [t.shape for t in out.triplet_feats] == [(2, 1024), (2, 2048), (2, 1024)]
    assert [t.shape for t in out.logits] == [(2, 5), (2, 5)]
    assert out.proj.shape == (2, 1024) and out.triplet_feats[1].shape == (2, 2048)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 3072) and model.descriptor_dim == 3072


def test_rn50_backbone_random_init_and_prompt_side():
    enc, clip = rn50_backbone(None, {**SMALL, "layers": list(SMALL["layers"])}, (128, 64))
    assert enc.grid == (8, 4) and enc.visual is clip.visual
    assert clip.text_projection.out_features == enc.proj_dim == 64
    assert clip.text_model.embeddings.token_embedding.weight.shape == (49408, 128)
    assert RN50Spec.from_mapping({}) == RN50Spec()  # conf/backbone/rn50.yaml's config: {} is OpenAI's RN50
    with pytest.raises(ValueError, match="unknown RN50 config keys"):
        rn50_backbone(None, {"depth": 50}, (128, 64))
