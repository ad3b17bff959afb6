"""Loss values on hand-computed cases."""
import math

import torch

from reid.losses import batch_hard_triplet, id_loss, supervised_contrastive


def test_id_loss_label_smoothing_hand_value():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    labels = torch.tensor([0])
    eps = 0.1
    logp = torch.log_softmax(logits, dim=1)[0]
    # target = (1 - eps) onehot + eps / 3
    expected = -((1 - eps + eps / 3) * logp[0] + (eps / 3) * logp[1] + (eps / 3) * logp[2])
    assert math.isclose(float(id_loss(logits, labels, eps)), float(expected), rel_tol=1e-6)
    z = math.log(math.exp(2) + 2)
    assert math.isclose(float(id_loss(logits, labels, 0.0)), z - 2, rel_tol=1e-6)


def test_batch_hard_triplet_hand_value():
    # 1-D features: ids a={0, 1}, b={3, 7}
    feats = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # anchor 0: d_ap=1, d_an=3 -> relu(1-3+0.3)=0
    # anchor 1: d_ap=1, d_an=2 -> relu(1-2+0.3)=0
    # anchor 3: d_ap=4, d_an=2 -> 2.3 ; anchor 7: d_ap=4, d_an=6 -> 0
    expected = (0 + 0 + 2.3 + 0) / 4
    assert math.isclose(float(batch_hard_triplet(feats, labels, 0.3)), expected, rel_tol=1e-5)
    soft = sum(math.log1p(math.exp(x)) for x in (1 - 3, 1 - 2, 4 - 2, 4 - 6)) / 4
    assert math.isclose(float(batch_hard_triplet(feats, labels, 0.0)), soft, rel_tol=1e-5)


def test_supervised_contrastive_both_directions_hand_value():
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    t = torch.tensor([[2.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    y = torch.tensor([0, 1, 0])
    logits = v @ t.t()
    expected = 0.0
    for i in range(3):
        pos = [j for j in range(3) if y[j] == y[i]]
        lse = math.log(sum(math.exp(float(logits[i, k])) for k in range(3)))
        expected += -sum(float(logits[i, j]) - lse for j in pos) / len(pos)
    expected /= 3
    assert math.isclose(float(supervised_contrastive(v, t, y, y)), expected, rel_tol=1e-6)
    # text-to-image direction is the same operator on the transposed logits
    logits_t = t @ v.t()
    expected_t = 0.0
    for i in range(3):
        pos = [j for j in range(3) if y[j] == y[i]]
        lse = math.log(sum(math.exp(float(logits_t[i, k])) for k in range(3)))
        expected_t += -sum(float(logits_t[i, j]) - lse for j in pos) / len(pos)
    expected_t /= 3
    assert math.isclose(float(supervised_contrastive(t, v, y, y)), expected_t, rel_tol=1e-6)
