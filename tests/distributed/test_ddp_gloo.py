"""`torchrun --nproc_per_node=2 -m reid.train ...` end to end on the CPU (gloo), as a user would start it.

Two ranks train the baseline on a tiny synthetic world with DistributedDataParallel, evaluate with
sharded feature extraction and all-gather, and only rank 0 logs to MLflow and writes checkpoints.
The gathered evaluation must equal a single-process evaluation of the saved model. A second job is
stopped with SIGTERM (what torchrun forwards on preemption) while held at stage 2's second epoch by the run's test
barrier (so the signal never races the job's progress), then re-run.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from reid.build import build_dataset, build_evaluator, limit_test_set
from reid.engine.checkpoint import Checkpointer
from reid.inference import load_run
from reid.pipeline import FINAL_METRICS
from tests.shared import HoldBarrier

ROOT = Path(__file__).resolve().parents[2]
WORLD = 2
TORCHRUN = (
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--standalone",
    f"--nproc_per_node={WORLD}",
    "-m",
    "reid.train",
)
JOB = (
    "experiment=demo", "debug=fast", "backbone=clip_tiny", "method=baseline",
    "dataset.options.num_train_ids=8", "dataset.options.num_test_ids=8",
    "dataset.options.num_distractors=8", "dataset.options.num_junk=8",
    "num_workers=0", "eval.plots=false", "method.stage2.batch_size=16",  # P = 4 identities: 2 per rank
)
TIMEOUT_S = 900  # one torchrun job on a loaded 2-core machine
RANK_MAP = re.compile(r"^\[rank (\d)/2\] final mAP=([0-9.]+)$", re.M)


def _env(**extra: str) -> dict[str, str]:
    """This checkout first on the path; no torchrun or sweep variables inherited from the test process.

    Jobs run with the test's temporary folder as working directory (their ``paths.root_dir``), so MLflow's
    default artifact folder (``./mlruns``) lands there, not in the checkout.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("REID_") and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    return env


def _command(tmp: Path, name: str, *overrides: str) -> list[str]:
    """A job whose run folder is <tmp>/<name>/run and MLflow store <tmp>/<name>/mlflow.db; the world is shared."""
    return [
        *TORCHRUN, *JOB,
        f"paths.data_dir={tmp / 'data'}", f"paths.model_dir={tmp / name / 'models'}",
        f"logger.tracking_uri=sqlite:///{tmp / name / 'mlflow.db'}", f"hydra.run.dir={tmp / name / 'run'}",
        *overrides,
    ]


def _runs(tmp: Path, name: str):
    client = MlflowClient(f"sqlite:///{tmp / name / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("reid")
    assert experiment is not None
    return client, client.search_runs([experiment.experiment_id])


def _rank_maps(output: str) -> dict[int, float]:
    return {int(r): float(v) for r, v in RANK_MAP.findall(output)}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ddp_gloo")


@pytest.fixture(scope="module")
def ddp_job(world):
    started = time.perf_counter()
    done = subprocess.run(
        _command(world, "run"), cwd=world, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"torchrun exited {done.returncode}:\n{output[-8000:]}"
    print(f"2-rank torchrun job: {time.perf_counter() - started:.1f} s")
    return world / "run" / "run", output


def test_both_ranks_finish_with_the_same_map(ddp_job):
    _, output = ddp_job
    maps = _rank_maps(output)
    assert sorted(maps) == [0, 1]
    assert maps[0] == maps[1]
    assert output.count("final (baseline on synthetic)") == 1  # the summary tables are printed by rank 0 only


def test_one_mlflow_run_with_the_final_metrics(ddp_job, world):
    _, output = ddp_job
    _, runs = _runs(world, "run")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["world_size"] == "2"
    assert run.data.tags["run_dir"] == str(world / "run" / "run")
    assert set(FINAL_METRICS) <= set(run.data.metrics)
    assert run.data.metrics["mAP"] == pytest.approx(_rank_maps(output)[0], abs=1e-9)


def test_one_checkpoint_set(ddp_job, world):
    job = world / "run"
    checkpoints = sorted(p.relative_to(job) for p in job.rglob("*.pt"))
    assert checkpoints == [Path("run/checkpoints/ckpt_stage2_e0001.pt")]  # rank 0's; rank 1 wrote none
    assert not list(job.rglob("*.tmp"))
    assert sorted(p.name for p in job.iterdir() if p.is_dir()) == ["run"]  # no second Hydra folder


def test_gathered_evaluation_equals_single_process_evaluation(ddp_job, world):
    run_dir, output = ddp_job
    trained = load_run(run_dir, device="cpu", root_dir=ROOT)
    assert trained.checkpoint.name == "ckpt_stage2_e0001.pt"
    cfg = trained.config
    test = limit_test_set(build_dataset(cfg), int(cfg.limits.eval_images))
    single = build_evaluator(cfg, trained.model, test.query, test.gallery, torch.device("cpu"))()
    _, runs = _runs(world, "run")
    logged = runs[0].data.metrics
    assert abs(single.metrics["mAP"] - _rank_maps(output)[0]) <= 1e-6
    for name in FINAL_METRICS:
        assert abs(single.metrics[name] - logged[name]) <= 1e-6, name


def test_resume_after_sigterm_under_ddp(world, ddp_job):
    """Stop a 3-epoch job held before stage 2's epoch 2; the re-run resumes it to the end in the same MLflow run."""
    del ddp_job  # runs after it, reusing its synthetic world
    overrides = ("limits.epochs=3", "limits.steps_per_epoch=0", "eval.at_start=false")
    cmd = _command(world, "resume", *overrides)
    checkpoints = world / "resume" / "run" / "checkpoints"
    (world / "resume").mkdir()
    log_path = world / "resume" / "first.log"
    barrier = HoldBarrier(world / "resume" / "hold")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            # torchrun SIGKILLs workers that have not exited 30 s after it forwarded SIGTERM (its shutdown timeout):
            # on a loaded machine that clock, not the job, could decide whether the checkpoint gets written.
            cmd, cwd=world, env=_env(**barrier.env("stage2:2:1"), TORCH_ELASTIC_SHUTDOWN_TIMEOUT=str(TIMEOUT_S)),
            stdout=log, stderr=subprocess.STDOUT, text=True,
        )
        try:
            barrier.wait_held(proc, log_path, timeout_s=TIMEOUT_S)  # a rank is parked: epoch 1 is checkpointed
            proc.send_signal(signal.SIGTERM)  # torchrun forwards it to both ranks; the flag also ends the hold
            first_rc = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    first_output = (world / "resume" / "first.log").read_text()
    assert first_rc != 0, f"the job finished before it could be stopped:\n{first_output[-4000:]}"
    stopped = Checkpointer.load(checkpoints / "ckpt_stage2_e0002.pt")  # the ranks agreed to stop after one step
    assert (stopped["epoch"], stopped["batch"], stopped["complete"]) == (2, 1, False)
    assert not (checkpoints / "ckpt_stage2_e0003.pt").exists()
    _, runs = _runs(world, "resume")
    assert len(runs) == 1 and runs[0].info.status != "FINISHED"
    run_id = runs[0].info.run_id

    done = subprocess.run(cmd, cwd=world, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"resumed torchrun exited {done.returncode}:\n{output[-8000:]}"
    assert output.count("[resume] from") == 1  # printed by rank 0; both ranks loaded the same file
    maps = _rank_maps(output)
    assert sorted(maps) == [0, 1] and maps[0] == maps[1]
    assert (checkpoints / "ckpt_stage2_e0003.pt").exists()
    client, runs = _runs(world, "resume")
    assert [r.info.run_id for r in runs] == [run_id]  # the same MLflow run, continued
    assert runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["mAP"] == pytest.approx(maps[0], abs=1e-9)
    epochs = sorted({m.step for m in client.get_metric_history(run_id, "stage2/loss")})
    assert epochs == [1, 2, 3]


def test_clipreid_with_ssl_under_ddp(world, ddp_job):
    """CLIP-ReID + SVLL's two SSL terms: sharded stage-1 cache, replicated prompt training, DDP over Stage2Net with
    the two SSL views; rank 0's evaluation is reproduced single-process from the saved model."""
    del ddp_job  # runs after it, reusing its synthetic world
    overrides = (
        "method=clipreid", "ssl=simclr", "ssl.vision.projector.hidden=64", "ssl.lang.projector.hidden=64",
        "method.stage1.batch_size=16", "limits.steps_per_epoch=3", "eval.at_start=false",
    )
    done = subprocess.run(
        _command(world, "svll", *overrides), cwd=world, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"torchrun exited {done.returncode}:\n{output[-8000:]}"
    maps = _rank_maps(output)
    assert sorted(maps) == [0, 1] and maps[0] == maps[1]
    assert "ssl_lang=" in output and "ssl_vis=" in output
    ckpts = sorted(p.name for p in (world / "svll" / "run" / "checkpoints").glob("*.pt"))
    assert ckpts == ["ckpt_stage1_e0001.pt", "ckpt_stage2_e0001.pt"]
    trained = load_run(world / "svll" / "run", device="cpu", root_dir=ROOT)
    cfg = trained.config
    test = limit_test_set(build_dataset(cfg), int(cfg.limits.eval_images))
    single = build_evaluator(cfg, trained.model, test.query, test.gallery, torch.device("cpu"))()
    assert abs(single.metrics["mAP"] - maps[0]) <= 1e-6
