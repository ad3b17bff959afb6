"""Hydra launchers: the joblib plugin and the conf/hydra/launcher/slurm_gpu.yaml preset compose with the train
config, the preset turns into the intended sbatch directives, and a real 2-job joblib multirun trains both jobs."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason='pip install -e ".[launchers]"')
pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason='pip install -e ".[launchers]"')

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
JOBLIB_TARGET = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
SLURM_TARGET = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
SLURM_ENV = ("REID_SLURM_PARTITION", "REID_SLURM_ACCOUNT", "REID_SLURM_QOS")


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF)):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.fixture
def no_slurm_env(monkeypatch):
    for name in SLURM_ENV:
        monkeypatch.delenv(name, raising=False)


def test_joblib_launcher_composes_with_the_train_config():
    cfg = compose_train("hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "experiment=demo")
    launcher = cfg.hydra.launcher
    assert launcher._target_ == JOBLIB_TARGET
    assert launcher.n_jobs == 2
    assert launcher.backend == "loky" and launcher.prefer == "processes"
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "joblib"
    assert cfg.task_name == "demo"  # the experiment still applies on top


def test_slurm_gpu_preset_defaults(no_slurm_env):
    cfg = compose_train("hydra/launcher=slurm_gpu")
    launcher = cfg.hydra.launcher
    assert launcher._target_ == SLURM_TARGET
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "slurm_gpu"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (1, 1, 1)
    assert (launcher.cpus_per_task, launcher.mem_gb, launcher.timeout_min) == (8, 64, 24 * 60)
    assert launcher.partition == "gpu"
    assert launcher.account is None and launcher.qos is None
    assert launcher.max_num_timeout == 0
    # Keys the preset does not set keep the plugin's schema defaults (it extends submitit_slurm).
    assert launcher.use_srun is True and launcher.signal_delay_s == 120 and launcher.gres is None


def test_slurm_gpu_preset_reads_the_cluster_from_the_environment(monkeypatch):
    monkeypatch.setenv("REID_SLURM_PARTITION", "a100")
    monkeypatch.setenv("REID_SLURM_ACCOUNT", "vision")
    monkeypatch.setenv("REID_SLURM_QOS", "high")
    cfg = compose_train("hydra/launcher=slurm_gpu", "hydra.launcher.gpus_per_node=4", "hydra.launcher.mem_gb=256")
    launcher = cfg.hydra.launcher
    assert (launcher.partition, launcher.account, launcher.qos) == ("a100", "vision", "high")
    assert (launcher.gpus_per_node, launcher.mem_gb) == (4, 256)


def test_slurm_gpu_preset_becomes_these_sbatch_directives(tmp_path, monkeypatch, no_slurm_env):
    """The plugin's own launch() with the preset, stopped at submission, then submitit's sbatch script for it."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
    from submitit.slurm.slurm import _make_sbatch_string

    cfg = compose_train("hydra/launcher=slurm_gpu", f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.job.name=train")
    HydraConfig.instance().set_config(cfg)
    try:
        params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    finally:
        HydraConfig.instance().cfg = None
    assert params.pop("_target_") == SLURM_TARGET
    launcher = SlurmLauncher(**params)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)

    recorded = {}

    class Submitted(Exception):
        pass

    class RecordingExecutor:
        def __init__(self, **kwargs):
            recorded["init"] = kwargs

        def update_parameters(self, **kwargs):
            recorded["parameters"] = kwargs

        def map_array(self, fn, *job_args):
            recorded["jobs"] = list(zip(*job_args))
            raise Submitted

    with mock.patch.object(submitit, "AutoExecutor", RecordingExecutor), pytest.raises(Submitted):
        launcher.launch([["seed=1"], ["seed=2"]], initial_job_idx=0)
    assert [job[0] for job in recorded["jobs"]] == [["seed=1"], ["seed=2"]]
    assert recorded["init"]["folder"] == f"{tmp_path / 'sweep'}/.submitit/%j"

    # submitit refuses to build a SLURM executor where `srun` is missing: give it a stand-in on PATH.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "srun").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    init = {k: v for k, v in recorded["init"].items() if k not in ("cluster", "folder")}
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path / "submitit", **init)
    executor.update_parameters(**recorded["parameters"])  # raises on a key submitit does not know
    script = _make_sbatch_string(command="python -m reid.train", folder=str(tmp_path / "logs"),
                                 **executor._executor.parameters)
    directives = set(re.findall(r"^#SBATCH (--\S+)$", script, flags=re.MULTILINE))
    assert {
        "--nodes=1", "--ntasks-per-node=1", "--gpus-per-node=1", "--cpus-per-task=8", "--mem=64GB",
        "--time=1440", "--partition=gpu", "--job-name=train",
    } <= directives, script
    assert not any(d.startswith(("--account", "--qos")) for d in directives), script
    assert "srun --unbuffered" in script




def test_joblib_multirun_trains_two_jobs_in_parallel(tmp_path):
    pytest.importorskip("reid.evaluation")
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable, "-m", "reid.train", "-m",
        "experiment=demo",
        "method=baseline",
        "backbone=clip_tiny", "debug=fast", "logger=none",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2",
        f"paths.data_dir={tmp_path / 'data'}", f"hydra.sweep.dir={sweep}",
        # a tiny synthetic world and the least work that still trains and evaluates
        "dataset.options.num_train_ids=8", "dataset.options.num_test_ids=8",
        "dataset.options.num_distractors=8", "dataset.options.num_junk=4",
        "dataset.options.val_fraction=0.0",  # all 8 identities train: one P×K batch
        "limits.steps_per_epoch=1", "eval.at_start=false", "eval.plots=false",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Each job wrote its final metrics (the mAP reid.pipeline.train returns as the sweep objective) into its folder;
    # their printed tables interleave on the shared pipe, so the test reads the files.
    for num in (0, 1):
        final = json.loads((sweep / str(num) / "metrics.json").read_text())
        assert final["method"] == "baseline" and final["dataset"] == "synthetic"
        assert 0.0 < final["metrics"]["mAP"] <= 1.0
    assert proc.stdout.count("final (baseline on synthetic)") == 2

    # Both jobs ran to the end in their own folders, with their own seed, under the joblib launcher.
    for num, seed in ((0, 1), (1, 2)):
        job = sweep / str(num)
        assert f"seed={seed}" in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["seed"] == seed
        assert list((job / "checkpoints").glob("ckpt_stage2_*.pt")), f"job {num} saved no checkpoint"
        hydra_cfg = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert hydra_cfg["launcher"]["_target_"] == JOBLIB_TARGET and hydra_cfg["launcher"]["n_jobs"] == 2
        assert hydra_cfg["job"]["num"] == num
    assert (sweep / "multirun.yaml").is_file()
