"""docs/extending.md, example 1: a new loss is one module in reid/losses/ and one yaml key (circle loss)."""
from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir

from reid.build.training import objective_factory
from reid.losses.circle import circle_loss
from reid.models.reid_model import TrainOutput
from tests.extending.helpers import ROOT, files_mentioning, train_smoke


def test_nothing_outside_its_module_and_its_yaml_key_was_needed():
    assert files_mentioning("circle") == {"reid/losses/circle.py", "conf/loss/baseline.yaml"}
    assert files_mentioning("circle_weight") == {"reid/losses/circle.py", "conf/loss/baseline.yaml"}


def _objective(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf")):
        cfg = compose("train", overrides=["experiment=demo", *overrides])
    return objective_factory(cfg)("image", {"text_classifier"})


def test_it_is_a_weighted_term_and_off_at_weight_zero():
    assert "circle" not in _objective().names  # loss/baseline.yaml's default: 0, never computed
    objective = _objective("loss.circle_weight=0.5", "+loss.circle_margin=0.4")
    assert objective.names == ["id", "triplet", "i2t", "circle"] and objective.weight("circle") == 0.5
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(2)
    feats = [torch.randn(8, 16, generator=g) for _ in range(3)]
    out = TrainOutput(logits=[torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)], triplet_feats=feats,
                      proj=feats[2])
    terms = objective({"train": out, "labels": labels, "text_classifier": torch.randn(4, 16, generator=g)})
    # the + key reached it
    assert float(terms["circle"]) == pytest.approx(float(circle_loss(feats[1], labels, 64.0, 0.4)))
    expected = 0.25 * terms["id"] + terms["triplet"] + terms["i2t"] + 0.5 * terms["circle"]
    assert float(terms["loss"]) == pytest.approx(float(expected), rel=1e-6)


def test_circle_loss_prefers_identities_that_cluster():
    labels = torch.arange(3).repeat_interleave(2)
    centres = torch.eye(3, 8)
    tight = centres[labels] + 0.01 * torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    mixed = torch.randn(6, 8, generator=torch.Generator().manual_seed(2))
    assert float(circle_loss(tight, labels)) < float(circle_loss(mixed, labels))
    with pytest.raises(ValueError, match="two images of one identity"):
        circle_loss(torch.randn(3, 8), torch.arange(3))


def test_training_logs_and_weights_it(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    train_smoke(tmp_path, "loss.circle_weight=0.5", "logger=mlflow", f"logger.tracking_uri={uri}",
                "logger.experiment_name=circle")
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("circle").experiment_id])[0]
    m = run.data.metrics
    assert m["stage2/circle"] > 0
    # epoch means of a linear sum: the logged total is the weighted sum of the logged terms
    expected = 0.25 * m["stage2/id"] + m["stage2/triplet"] + m["stage2/i2t"] + 0.5 * m["stage2/circle"]
    assert m["stage2/loss"] == pytest.approx(expected, rel=1e-6)
