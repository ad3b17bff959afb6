"""Speed switches (docs/gpu_speed.md) change no result beyond mixed-precision tolerance: CPU checks on a tiny CLIP.

Tolerances. bf16 keeps 8 significant bits (unit roundoff u = 2^-8 ≈ 3.9e-3); under autocast every matmul / conv
rounds its inputs to bf16 and its output is bf16, while LayerNorm, softmax and the losses' reductions run in fp32.
A forward pass through a few blocks therefore carries a relative error of a few u (measured on this model: ~2.5e-3
on the descriptor), and 1e-2 (≈ 2.5 u) bounds it with margin while still failing for any real mistake (a wrong
cast, a dropped layer: errors of order 1). fp16 has u = 2^-11 ≈ 4.9e-4, so its bound is 8x tighter (1.25e-3).
The loss terms are compared relatively too; their own arithmetic must run in fp32 (see the xfail test below).
The classifier logits come after a batch-mean subtraction, whose conditioning number kappa scales the bound.
Attention kernels and memory layouts reorder fp32 sums only: 1e-5.
"""
from __future__ import annotations

import importlib.util
import os
import time

import pytest
import torch
import torch.nn.functional as F

from reid.engine.optim import build_optimizer
from reid.engine.precision import Precision
from reid.engine.speed import COMPILE_MODES, apply_speed_settings, fused_optimizer_flag
from reid.losses.id_loss import classifier_accuracy
from reid.losses.terms import make_objective
from reid.models.clip_loader import load_clip
from reid.models.reid_model import ReIDModel
from reid.models.vit_encoder import ClipViTEncoder
from tests.shared import TINY_CLIP

SIZE = (64, 32)  # ReID input (H, W): a 8x4 patch grid + the class token
IDS, K = 4, 4    # PK batch: 4 identities x 4 images
CPU = torch.device("cpu")
BF16_RTOL = 1e-2
FP16_RTOL = 1.25e-3
RTOL = {"bf16": BF16_RTOL, "fp16": FP16_RTOL}


def build_model(attn: str = "sdpa", seed: int = 0) -> ReIDModel:
    torch.manual_seed(seed)
    clip = load_clip(None, TINY_CLIP, attn_implementation=attn)
    encoder = ClipViTEncoder(clip.vision_model, clip.visual_projection, SIZE, stride=8, mid_depth=2)
    return ReIDModel(encoder, IDS, classifier_std=0.001)


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(IDS * K, 3, *SIZE, generator=g), torch.arange(IDS).repeat_interleave(K)


def objective():
    """conf/loss/clipreid.yaml's stage-2 objective: 0.25·ID + 1·triplet (three depths) + 1·i2t, smoothing 0.1,
    margin 0.3; called as (model output, labels)."""
    g = torch.Generator().manual_seed(2)
    text = torch.randn(IDS, TINY_CLIP["projection_dim"], generator=g)
    obj = make_objective(
        "image", {"id": 0.25, "triplet": 1.0, "i2t": 1.0},
        {"id": {"label_smoothing": 0.1}, "triplet": {"margin": 0.3, "on": ["mid", "last", "proj"]},
         "i2t": {"label_smoothing": 0.1}},
        {"text_classifier"}, monitors={"acc": classifier_accuracy},
    )
    return lambda out, labels: obj({"train": out, "labels": labels, "text_classifier": text})


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def assert_same_training_step(
    model: torch.nn.Module, ref_model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> None:
    """One training forward + backward of both models: the same loss (1e-5) and the same gradients."""
    obj = objective()
    ref_loss = obj(ref_model.train()(images), labels)["loss"]
    loss = obj(model.train()(images), labels)["loss"]
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    loss.backward()
    ref_loss.backward()
    assert_same_gradients(model, ref_model)


def assert_same_gradients(model: torch.nn.Module, ref_model: torch.nn.Module, rtol: float = 1e-4) -> None:
    """Per tensor, |g - g_ref| <= rtol·|g_ref| + 1e-6·|all of g_ref| (norms).

    A weight gradient sums thousands of products, and another summation order (another kernel, another layout)
    moves single near-zero entries by ~1e-3 relative while the tensor agrees to ~sqrt(n)·2^-24 (1e-5 for 10^4
    terms) in norm. The absolute floor covers gradients that are zero in exact arithmetic and pure rounding noise
    here, e.g. an attention key bias (softmax ignores a shift shared by all keys)."""
    pairs = [(name, p.grad, q.grad) for (name, p), q in zip(model.named_parameters(), ref_model.parameters())]
    total = sum(float(g_ref.norm()) ** 2 for _, _, g_ref in pairs if g_ref is not None) ** 0.5
    for name, g, g_ref in pairs:
        if g_ref is None:
            assert g is None, name
            continue
        diff = float((g - g_ref).norm())
        assert diff <= rtol * float(g_ref.norm()) + 1e-6 * total, (
            f"{name}: |dg| {diff:.2e} vs |g| {float(g_ref.norm()):.2e}"
        )


@pytest.fixture(scope="module")
def model() -> ReIDModel:
    return build_model()


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_autocast_descriptors_and_training_features_match_fp32(model, mode):
    images, _ = batch()
    precision = Precision(mode, CPU)
    model.eval()
    with torch.no_grad():
        ref = model(images)
        with precision.autocast():
            low = model(images)
    err = rel(low, ref)
    assert 0 < err <= RTOL[mode], f"{mode} descriptor relative error {err:.2e}"  # > 0: autocast really ran
    model.train()
    with torch.no_grad():
        ref_out = model(images)
        with precision.autocast():
            out = model(images)
    assert out.proj.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]
    for name, a, b in zip(("f_mid", "f_last", "f_proj"), out.triplet_feats, ref_out.triplet_feats):
        assert rel(a, b) <= RTOL[mode], f"{mode} {name}: {rel(a, b):.2e}"
    # The BNNecks (training mode) subtract the batch mean first, which scales a relative error by
    # kappa = |f| / |f - mean_batch(f)| (~10 here: a random network maps noise images to nearly equal features).
    for name, a, b, feat in zip(
        ("logits", "logits_proj"), out.logits, ref_out.logits, (ref_out.triplet_feats[1], ref_out.proj)
    ):
        kappa = float(feat.norm() / (feat - feat.mean(dim=0)).norm())
        assert rel(a, b) <= RTOL[mode] * kappa, f"{mode} {name}: {rel(a, b):.2e} (kappa {kappa:.1f})"


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_stage2_objective_on_autocast_features_matches_fp32(model, mode):
    """The forward under autocast (as StageLoop runs it), the loss arithmetic in fp32: every term within tolerance."""
    images, labels = batch()
    obj = objective()
    model.train()
    with torch.no_grad():
        ref = obj(model(images), labels)
        with Precision(mode, CPU).autocast():
            out = model(images)
        with torch.autocast(device_type="cpu", enabled=False):
            low = obj(out, labels)
    assert set(low) == {"id", "triplet", "i2t", "loss", "acc"}
    for name in ("id", "triplet", "i2t", "loss"):
        err = abs(float(low[name]) - float(ref[name])) / abs(float(ref[name]))
        assert err <= RTOL[mode], f"{mode} {name}: {float(low[name])} vs {float(ref[name])} (rel {err:.2e})"


def test_objective_inside_autocast_keeps_loss_arithmetic_fp32(model):
    """The stage-2 objective called inside bf16 autocast (what StageLoop does) == the same call outside it."""
    images, labels = batch()
    obj = objective()
    model.train()
    with torch.no_grad(), Precision("bf16", CPU).autocast():
        out = model(images)
        inside = obj(out, labels)
    with torch.no_grad():
        outside = obj(out, labels)
    for name in ("id", "triplet", "i2t", "loss"):
        torch.testing.assert_close(inside[name], outside[name], rtol=1e-5, atol=0)


def test_attention_implementation_is_honoured_and_agrees(monkeypatch, tmp_path):
    """backbone.attn_implementation reaches every attention layer (from config and from_pretrained); eager == sdpa."""
    eager, sdpa = build_model("eager"), build_model("sdpa")
    sdpa.load_state_dict(eager.state_dict())
    for m, impl in ((eager, "eager"), (sdpa, "sdpa")):
        assert {layer.self_attn.config._attn_implementation for layer in m.encoder.layers} == {impl}
    calls = {"n": 0}
    real = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    images, _ = batch()
    with torch.no_grad():
        out_eager = eager.eval()(images)
        assert calls["n"] == 0
        out_sdpa = sdpa.eval()(images)
        assert calls["n"] == len(sdpa.encoder.layers)  # one SDPA call per block: the switch is really used
    torch.testing.assert_close(out_sdpa, out_eager, rtol=1e-5, atol=1e-5)
    # from_pretrained honours it too (the path of backbone.pretrained, e.g. openai/clip-vit-base-patch16)
    torch.manual_seed(0)
    load_clip(None, TINY_CLIP, attn_implementation="sdpa").save_pretrained(tmp_path)
    for impl in ("eager", "sdpa"):
        clip = load_clip(str(tmp_path), attn_implementation=impl)
        layers = list(clip.vision_model.encoder.layers) + list(clip.text_model.encoder.layers)
        assert {layer.self_attn.config._attn_implementation for layer in layers} == {impl}


@pytest.mark.parametrize(
    ("setting", "device", "expected"),
    [
        ("auto", "cuda", True), ("auto", "cuda:1", True), ("auto", "cpu", None), ("AUTO", CPU, None),
        (True, "cpu", True), ("true", "cuda", True), (False, "cuda", None), ("false", "cpu", None),
    ],
)
def test_fused_optimizer_flag(setting, device, expected):
    assert fused_optimizer_flag(setting, device) is expected


@pytest.mark.parametrize("bad", ["yes", None, 1, "fused"])
def test_fused_optimizer_flag_rejects_unknown(bad):
    with pytest.raises(ValueError, match="speed.fused_optimizer"):
        fused_optimizer_flag(bad, "cpu")


def test_fused_adam_step_matches_unfused():
    """build_optimizer(fused=True) on the CPU (torch has a fused CPU Adam) takes the same step as the for-loop one."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    grads = [torch.randn_like(p) for p in params]
    results = []
    for fused in (None, True):
        ps = [torch.nn.Parameter(p.detach().clone()) for p in params]
        opt = build_optimizer([("w", ps[0]), ("b.bias", ps[1])], "adam", 1e-2, 1e-4, 2.0, 1e-4, fused=fused)
        assert opt.defaults["fused"] is fused
        for _ in range(3):
            for p, g in zip(ps, grads):
                p.grad = g.clone()
            opt.step()
        results.append([p.detach() for p in ps])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_channels_last_leaves_outputs_unchanged():
    ref_model, model = build_model(), build_model()
    images, _ = batch()
    seen = []
    model.encoder.register_forward_hook(
        lambda mod, args, out: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    assert apply_speed_settings(model, channels_last=True) is model
    apply_speed_settings(model, channels_last=True)  # idempotent: the input hook is registered once
    weight = model.encoder.patch_embedding.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    with torch.no_grad():
        ref = ref_model.eval()(images)
        out = model.eval()(images)
        ref_proj = ref_model.encode_projected(images)
        proj = model.encode_projected(images)  # the stage-1 cache path converts its inputs too
    assert seen == [True, True]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(proj, ref_proj, rtol=1e-5, atol=1e-5)
    model.train()
    out_t = model(images)
    out_t.logits[0].sum().backward()
    assert weight.grad is not None and torch.isfinite(weight.grad).all()


@pytest.mark.skipif(
    importlib.util.find_spec("open_clip") is None, reason="backbone=rn50 needs open_clip's ModifiedResNet"
)
def test_channels_last_on_a_conv_backbone_leaves_outputs_unchanged():
    """The switch's real target: a (tiny) CLIP ResNet, where every conv runs channels-last."""
    from reid.models.rn50 import rn50_backbone

    spec = {"layers": [1, 1, 1, 1], "width": 8, "embed_dim": 32, "image_size": 64, "text_width": 64, "text_layers": 1}
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        encoder, _ = rn50_backbone(None, spec, SIZE, last_stride=1)
        models.append(ReIDModel(encoder, IDS, classifier_std=0.001))
    ref_model, model = models
    apply_speed_settings(model, channels_last=True)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    images, labels = batch()
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(images), ref_model.eval()(images), rtol=1e-5, atol=1e-5)
    assert_same_training_step(model, ref_model, images, labels)


def test_compile_switch_validates_mode_and_keeps_state_dict_keys():
    model = build_model()
    keys = list(model.state_dict())
    with pytest.raises(ValueError, match="compile_mode"):
        apply_speed_settings(model, compile=True, compile_mode="fastest")
    assert apply_speed_settings(model, compile=True, compile_mode=COMPILE_MODES[0]) is model
    assert model.encoder._compiled_call_impl is not None  # compiled lazily, at the first call
    assert model.head._compiled_call_impl is None           # only the encoder
    assert list(model.state_dict()) == keys                 # checkpoints keep their keys (no "_orig_mod.")
    untouched = build_model()
    apply_speed_settings(untouched)
    assert untouched.encoder._compiled_call_impl is None and not untouched.encoder._forward_pre_hooks


@pytest.mark.skipif(
    os.environ.get("REID_TEST_COMPILE") != "1",
    reason="CPU cost: inductor took 138 s to compile this tiny encoder's forward alone, and the whole test ran 184 s, "
    "on the shared 2-core CPU it was written on (budget 60 s); set REID_TEST_COMPILE=1 to run it",
)
def test_compiled_encoder_matches_eager():
    ref_model, model = build_model(), build_model()
    apply_speed_settings(model, compile=True)
    images, labels = batch()
    started = time.perf_counter()
    with torch.no_grad():
        out = model.eval()(images)
    compile_s = time.perf_counter() - started
    with torch.no_grad():
        torch.testing.assert_close(out, ref_model.eval()(images), rtol=1e-5, atol=1e-5)
    assert_same_training_step(model, ref_model, images, labels)
    print(f"compile + first forward: {compile_s:.1f} s")
