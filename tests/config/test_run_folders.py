"""Run folders are named to the microsecond: two jobs started in the same second (two shells, a launcher) once
shared one folder, each overwriting the other's checkpoints, log and plots."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from omegaconf import OmegaConf

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize("entry", ["train", "evaluate", "export", "pretrain"])
def test_run_folders_differ_for_jobs_started_in_the_same_second(entry: str) -> None:
    hydra_node = OmegaConf.load(CONF_DIR / f"{entry}.yaml").hydra
    raw = OmegaConf.to_container(hydra_node, resolve=False)
    dirs = [raw["run"]["dir"]] + ([raw["sweep"]["dir"]] if "sweep" in raw else [])
    first, second = datetime(2026, 12, 4, 5, 22, 6, 120000), datetime(2026, 12, 4, 5, 22, 6, 870000)
    for pattern in dirs:
        stamp = pattern.split("${now:", 1)[1].split("}", 1)[0]
        assert first.strftime(stamp) != second.strftime(stamp), f"{entry}.yaml: {pattern} is only to the second"
