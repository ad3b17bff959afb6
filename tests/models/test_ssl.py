"""SVLL-ReID's self-supervised heads as its public code computes them: SimCLR's NT-Xent, its SimSiam, its MLP init.

The references are written out here from SVLL-ReID's published formulas (loss/SIMCLR_loss.py, loss/SMISIAM_loss.py,
model/make_model_svllreid.py), independently of the project's modules.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reid.engine.ssl_terms import SSLHead
from reid.losses.ntxent import nt_xent
from reid.models.ssl_heads import ProjectionMLP, SimSiamPredictor


def _svll_simclr(q_a: torch.Tensor, q_b: torch.Tensor, tau: float) -> torch.Tensor:
    """SIMCLRLoss.forward on one process: masks = one_hot * 1e9 subtracted from the same-view logits."""
    q_a, q_b = F.normalize(q_a, dim=-1), F.normalize(q_b, dim=-1)
    n = q_a.shape[0]
    labels = torch.arange(n)
    masks = F.one_hot(labels, n) * 1e9
    aa = q_a @ q_a.t() / tau - masks
    bb = q_b @ q_b.t() / tau - masks
    ab = q_a @ q_b.t() / tau
    ba = q_b @ q_a.t() / tau
    return (F.cross_entropy(torch.cat([ab, aa], 1), labels) + F.cross_entropy(torch.cat([ba, bb], 1), labels)) / 2


def _svll_simsiam(p1, z1, p2, z2) -> torch.Tensor:
    """SimsiamLoss(symmetry=True): -1/2 (D(p1, z2) + D(p2, z1)), D = mean cosine against the detached target."""

    def d(p, z):
        z = z.detach()
        return ((p / p.norm(dim=-1, keepdim=True)) * (z / z.norm(dim=-1, keepdim=True))).sum(dim=1).mean()

    return -0.5 * (d(p1, z2) + d(p2, z1))


def test_nt_xent_equals_svll_simclr_loss():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(12, 16, generator=g), torch.randn(12, 16, generator=g)
    torch.testing.assert_close(nt_xent(a, b, 0.1), _svll_simclr(a, b, 0.1), atol=1e-6, rtol=1e-6)


def test_svll_simsiam_head_predicts_from_the_class_token_with_a_stop_gradient():
    torch.manual_seed(0)
    width = 24
    predictor = SimSiamPredictor(width, 8).train()
    head = SSLHead("simsiam", None, None, predictor)
    assert head.projector is None and sorted(n.split(".")[0] for n, _ in head.named_parameters()) == ["predictor"] * 6
    z1 = torch.randn(6, width, requires_grad=True)
    z2 = torch.randn(6, width, requires_grad=True)
    ours = head(z1, z2)
    ours.backward()
    grads = z1.grad.clone(), z2.grad.clone()

    r1, r2 = z1.detach().clone().requires_grad_(True), z2.detach().clone().requires_grad_(True)
    reference = _svll_simsiam(predictor(r1), r1, predictor(r2), r2)
    reference.backward()
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(grads[0], r1.grad, atol=1e-6, rtol=1e-6)  # only through the predictor branch
    torch.testing.assert_close(grads[1], r2.grad, atol=1e-6, rtol=1e-6)
    assert -1.0 <= float(ours.detach()) <= 1.0


def test_svll_predictor_layout_matches_its_prediction_mlp():
    p = SimSiamPredictor(768, 512)
    shapes = {k: tuple(v.shape) for k, v in p.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert shapes == {
        "net.0.weight": (512, 768), "net.0.bias": (512,),     # linear1
        "net.1.weight": (512,), "net.1.bias": (512,),         # bn1
        "net.1.running_mean": (512,), "net.1.running_var": (512,),
        "net.3.weight": (768, 512), "net.3.bias": (768,),     # layer2
    }


def test_svll_image_mlp_init_keeps_default_biases():
    """SVLL's initialize_mlp: Kaiming-normal weights (fan_in, relu), U(0,1) BN affine, biases left at default."""
    torch.manual_seed(0)
    mlp = ProjectionMLP(768, 4096, 256, svll_init=True)
    first, bn = mlp.net[0], mlp.net[1]
    assert math.isclose(float(first.weight.std()), math.sqrt(2 / 768), rel_tol=0.02)
    bound = 1 / math.sqrt(768)  # nn.Linear's default bias init is U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert float(first.bias.abs().max()) <= bound and float(first.bias.abs().mean()) > bound / 4
    assert 0.0 <= float(bn.weight.min()) and float(bn.weight.max()) <= 1.0 and float(bn.bias.std()) > 0.2


@pytest.mark.parametrize("family", ["simclr", "simsiam"])
def test_ssl_head_refuses_incomplete_settings(family):
    with pytest.raises(ValueError):
        SSLHead(family, None, None, None)


def test_masking_same_identity_pairs_removes_them_from_every_denominator():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    torch.testing.assert_close(nt_xent(a, b, 0.2, torch.arange(6)), nt_xent(a, b, 0.2))  # all distinct: unchanged
    # by hand: anchor i of view a against its positive b_i and every other-identity image of both views
    qa, qb = F.normalize(a, dim=1), F.normalize(b, dim=1)
    losses = []
    for x, y in ((qa, qb), (qb, qa)):
        for i in range(6):
            others = labels != labels[i]
            logits = torch.cat([(x[i] @ y[i])[None], x[i] @ y[others].t(), x[i] @ x[others].t()]) / 0.2
            losses.append(-torch.log_softmax(logits, 0)[0])
    torch.testing.assert_close(nt_xent(a, b, 0.2, labels), torch.stack(losses).mean(), atol=1e-6, rtol=1e-6)


def test_a_detached_vision_term_trains_only_its_head():
    from reid.engine.stage2 import Stage2Net
    from tests.distributed import ddp_workers

    net, _ = ddp_workers.tiny_stage2(sie=False, ssl="simclr")
    detached = Stage2Net(net.model, net.ssl_head, detach=True)
    views = (torch.randn(4, 3, *ddp_workers.IMAGE_SIZE), torch.randn(4, 3, *ddp_workers.IMAGE_SIZE))
    images = torch.randn(4, 3, *ddp_workers.IMAGE_SIZE)
    for module, encoder_learns in ((net, True), (detached, False)):
        module.zero_grad(set_to_none=True)
        _, ssl_loss = module(images, None, None, views, torch.tensor([0, 0, 1, 1]))
        ssl_loss.backward()
        encoder_grads = [p.grad for p in module.model.encoder.parameters() if p.grad is not None]
        assert bool(encoder_grads) is encoder_learns
        assert all(p.grad is not None for p in module.ssl_head.parameters())
