"""The evaluations of one training run: during training, at the end, and which weights the end uses.

Without a validation split (the papers' recipes) the test split is evaluated every ``eval_period`` epochs of an image
stage, as CLIP-ReID does, and the last evaluation is the run's result. With one (``dataset.options.val_fraction``)
the validation split is evaluated instead (logged as ``val/<metric>``), the test split only once, at the end, and
``select_best`` (e.g. ``val/mAP``) makes the end use the weights of the best validation epoch: model selection
never looks at the test set.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from reid.engine.evaluator import EvalResult
from reid.tracking.base import Tracker


def format_metrics(metrics: dict[str, float], title: str, names: tuple[str, ...]) -> str:
    shown = [m for m in names if m in metrics]
    head = " | ".join(f"{n:>7}" for n in shown)
    row = " | ".join(f"{100 * metrics[n]:6.2f}%" for n in shown)
    return f"{title}\n{head}\n{'-' * len(head)}\n{row}"


def camera_diagnostics(result: EvalResult) -> dict[str, float]:
    """``diag/*`` metrics of a test result: how much its descriptors encode the camera (reid.evaluation.diagnostics)."""
    import numpy as np

    from reid.evaluation.diagnostics import camera_probe_accuracy, same_camera_false_matches

    qf, gf, q_pids, g_pids, q_cams, g_cams = result.features
    share = same_camera_false_matches(result.distances, q_pids, g_pids, q_cams, g_cams)
    feats = torch.cat([qf, gf])
    accuracy, majority = camera_probe_accuracy(
        feats, np.concatenate([q_pids, g_pids]), np.concatenate([q_cams, g_cams])
    )
    return {
        "diag/same_camera_false_top10": share,
        "diag/camera_probe_acc": accuracy,
        "diag/camera_probe_chance": majority,
    }


class RunEvaluation:
    def __init__(
        self,
        test: Callable[[], EvalResult],
        validation: Callable[[], EvalResult] | None,
        tracker: Tracker,
        say: Callable[[str], None],
        system: torch.nn.Module,
        names: tuple[str, ...],
        select_best: str | None = None,
    ):
        if select_best is not None and validation is None:
            raise ValueError(f"eval.select_best={select_best} needs a validation split (dataset.options.val_fraction)")
        if select_best is not None and not select_best.startswith("val/"):
            raise ValueError(
                f"eval.select_best must name a validation metric (val/mAP, val/rank1, ...), got {select_best}"
            )
        self.test, self.validation, self.tracker, self.say = test, validation, tracker, say
        self.system, self.names, self.select_best = system, names, select_best
        self.last_test: EvalResult | None = None
        self.last_val: dict[str, float] = {}
        self.best: dict[str, Any] = {"score": None, "epoch": None, "state": None}

    def periodic(self, stage: str, epoch: int) -> dict[str, float]:
        """One evaluation during training (validation if there is a split, else test); logged at ``epoch``."""
        if self.validation is None:
            result = self.last_test = self.test()
            self.tracker.log_metrics(result.metrics, step=epoch)
            self.say(format_metrics(result.metrics, f"evaluation after {stage} epoch {epoch}", self.names))
            return result.metrics
        metrics = {f"val/{k}": v for k, v in self.validation().metrics.items()}
        self.last_val = metrics
        self.tracker.log_metrics(metrics, step=epoch)
        self.say(
            format_metrics(
                {k[4:]: v for k, v in metrics.items()}, f"validation after {stage} epoch {epoch}", self.names
            )
        )
        if self.select_best is not None and (
            self.best["score"] is None or metrics[self.select_best] > self.best["score"]
        ):
            state = {k: v.detach().to("cpu", copy=True) for k, v in self.system.state_dict().items()}
            self.best.update(score=metrics[self.select_best], epoch=epoch, state=copy.copy(state))
        return metrics

    def final(self, stage: str, epoch: int) -> tuple[EvalResult, dict[str, float]]:
        """The test result the run reports, and every final metric (test names, plus ``val/*`` with a split)."""
        if self.validation is not None and not self.last_val:  # resumed after the last checkpoint
            self.periodic(stage, epoch)
        if self.best["state"] is not None:
            self.system.load_state_dict(self.best["state"])
            self.say(
                f"[select] the weights of the best validation epoch: {stage} epoch {self.best['epoch']} "
                f"({self.select_best}={self.best['score']:.4f})"
            )
            self.tracker.log_metrics(
                {"best_epoch": float(self.best["epoch"]), f"best/{self.select_best}": self.best["score"]}
            )
        if self.validation is not None or self.last_test is None:
            self.last_test = self.test()
        best_val = {self.select_best: self.best["score"]} if self.best["score"] is not None else {}
        return self.last_test, {**self.last_test.metrics, **self.last_val, **best_val}


def log_result_plots(tracker: Tracker, result: EvalResult, query, gallery, plots: Path, num_queries: int) -> None:
    """The CMC curve and a ranked-list sheet of the final test evaluation, in the run folder and on the run."""
    from reid.evaluation.plots import plot_cmc, ranked_list_figure

    plots.mkdir(parents=True, exist_ok=True)
    plot_cmc(result.cmc, plots / "cmc.png")
    tracker.log_artifact(plots / "cmc.png", "plots")
    ranked = plots / "ranked_list.png"
    ranked_list_figure(
        [r.path for r in query],
        [r.path for r in gallery],
        result.distances,
        [r.pid for r in query],
        [r.pid for r in gallery],
        [r.camid for r in query],
        [r.camid for r in gallery],
        ranked,
        topk=10,
        num_queries=num_queries,
    )
    tracker.log_artifact(ranked, "plots")
