"""Same seed + deterministic=true on the CPU: two runs end with identical metrics and bit-identical weights."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.tracking import MlflowClient

if TYPE_CHECKING:
    from conftest import FaultEnv


def test_two_runs_with_the_same_seed_are_identical(
    in_process: Callable[..., float], fault_env: FaultEnv, tmp_path: Path
) -> None:
    first = in_process(tmp_path / "a", experiment="determinism-a")
    second = in_process(tmp_path / "b", experiment="determinism-b")
    assert first == second
    a, b = fault_env.only_run("determinism-a"), fault_env.only_run("determinism-b")
    assert fault_env.final_metrics(a) == fault_env.final_metrics(b)
    # Every logged training curve too (per-epoch losses and lr of both stages), not only the final scores.
    client = MlflowClient(fault_env.mlflow_uri)
    curves = sorted(
        k for k in a.data.metrics if k.startswith(("stage1/", "stage2/")) and not k.endswith("epoch_time_s")
    )
    assert "stage1/loss" in curves and "stage2/loss" in curves

    def history(run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]

    for key in curves:
        assert history(a.info.run_id, key) == history(b.info.run_id, key), key
    name = fault_env.final_checkpoint
    fault_env.assert_same_weights(
        fault_env.system_weights(tmp_path / "a" / "checkpoints" / name),
        fault_env.system_weights(tmp_path / "b" / "checkpoints" / name),
    )
