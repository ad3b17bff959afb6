"""Shared pieces of the fault-injection suite: one tiny world, one MLflow store, one deterministic training job.

Every training job here is the same small CLIP-ReID run (both stages: 2 prompt epochs, then 3 image epochs of at
most 4 steps, a checkpoint after every epoch, evaluation after the last) on a synthetic world of 8 identities, with
``deterministic=true``. A killed, preempted or poisoned run can then be compared *exactly* with an uninterrupted one.

Jobs run single-threaded (``OMP_NUM_THREADS=1`` in subprocesses, ``torch.set_num_threads(1)`` in process): a CPU
GEMM may split its reductions differently with another thread count, so runs are only bit-comparable at the same
count, and on a shared 2-core machine one thread is also several times faster than two that keep waiting on each
other.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.shared import TINY_WORLD

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"

# The job every test trains (subprocess or in process) on the tiny world; tests add paths, logger and the fault.
JOB_SETTINGS = (
    "experiment=demo",
    "backbone=clip_tiny",            # randomly initialised tiny CLIP: no caption pretraining to wait for
    "deterministic=true",
    "seed=7",
    "num_workers=0",
    "progress=false",
    "eval.at_start=false",
    "eval.plots=false",
    "method.stage1.epochs=2",
    "method.stage2.epochs=3",
    "method.stage2.batch_size=16",
    "method.stage2.num_instances=4",
    "method.stage2.eval_period=3",
    "limits.steps_per_epoch=4",
    "checkpoint.period=1",
    "checkpoint.keep_last=2",
)
TINY_JOB = (*JOB_SETTINGS, *TINY_WORLD)
FINAL_METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP")
LAST_CHECKPOINT = "ckpt_stage2_e0003.pt"  # stage 2's last epoch: exists only once a job has finished training

JOB_TIMEOUT_S = 600  # one training subprocess on a loaded 2-core machine
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _default_sigint() -> None:
    """A job started by a test takes Ctrl-C as a terminal's foreground job does: a suite run from a background
    shell (``make test &``) inherits SIGINT ignored, and Python would keep ignoring it in the job."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def job_env() -> dict[str, str]:
    """The test process's environment without sweep context or fault hooks of its own, single-threaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REID_")}
    env.update(SINGLE_THREAD, PYTHONUNBUFFERED="1")
    return env


@dataclass
class FaultEnv:
    """The session's world, model folder and MLflow store, and how to run the tiny job against them."""

    data_dir: Path
    model_dir: Path
    mlflow_uri: str

    def paths(self, run_dir: Path) -> list[str]:
        return [f"paths.data_dir={self.data_dir}", f"paths.model_dir={self.model_dir}", f"hydra.run.dir={run_dir}"]

    def command(self, run_dir: Path, experiment: str, *overrides: str, mlflow_uri: str | None = None) -> list[str]:
        """``python -m reid.train`` for the tiny job, logging to ``experiment`` (in the session's MLflow store)."""
        return [
            sys.executable, "-m", "reid.train", *TINY_JOB, *self.paths(run_dir),
            f"logger.tracking_uri={mlflow_uri or self.mlflow_uri}", f"logger.experiment_name={experiment}", *overrides,
        ]

    @staticmethod
    def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            cmd, cwd=ROOT, env=env or job_env(), capture_output=True, text=True, timeout=JOB_TIMEOUT_S
        )

    def run_ok(self, cmd: list[str]) -> subprocess.CompletedProcess:
        done = self.run(cmd)
        assert done.returncode == 0, f"job exited {done.returncode}:\n{(done.stdout + done.stderr)[-6000:]}"
        return done

    @staticmethod
    def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a job in its own session (so a signal reaches only it), output to ``log``; ``env`` adds variables
        (a hold barrier's)."""
        with log.open("w") as out:
            return subprocess.Popen(
                cmd, cwd=ROOT, env={**job_env(), **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_default_sigint,
            )

    def runs(self, experiment: str, mlflow_uri: str | None = None) -> list[Any]:
        """Every MLflow run of ``experiment`` in the session's store (or in ``mlflow_uri``)."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(mlflow_uri or self.mlflow_uri)
        exp = client.get_experiment_by_name(experiment)
        assert exp is not None, f"no MLflow experiment {experiment!r}"
        return list(client.search_runs([exp.experiment_id], max_results=100))

    def only_run(self, experiment: str, mlflow_uri: str | None = None) -> Any:
        runs = self.runs(experiment, mlflow_uri)
        assert len(runs) == 1, f"expected one MLflow run in {experiment!r}, got {[r.info.run_id for r in runs]}"
        return runs[0]

    # Helpers shared by the test modules (with --import-mode=importlib they cannot import this conftest).
    final_checkpoint = LAST_CHECKPOINT

    @staticmethod
    def final_metrics(run: Any) -> dict[str, float]:
        return {k: run.data.metrics[k] for k in FINAL_METRICS}

    @staticmethod
    def system_weights(checkpoint: Path) -> dict[str, Any]:
        from reid.engine.checkpoint import Checkpointer

        return Checkpointer.load(checkpoint)["system"]

    @staticmethod
    def assert_same_weights(a: dict[str, Any], b: dict[str, Any]) -> None:
        import torch

        assert a.keys() == b.keys()
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert not different, f"{len(different)} of {len(a)} tensors differ, e.g. {different[:5]}"


@pytest.fixture(scope="session")
def fault_env(tmp_path_factory: pytest.TempPathFactory) -> FaultEnv:
    """The tiny world (generated once, here, so jobs only read it) and a fresh MLflow store (schema created here,
    so jobs never race to create it)."""
    from hydra import compose, initialize_config_dir
    from mlflow.tracking import MlflowClient

    from reid.data import load_dataset

    base = tmp_path_factory.mktemp("faults")
    with initialize_config_dir(str(CONF_DIR)):
        cfg = compose("train", overrides=list(TINY_JOB))
    load_dataset(cfg.dataset.name, base / "data", **cfg.dataset.options)
    uri = f"sqlite:///{base / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    return FaultEnv(data_dir=base / "data", model_dir=base / "models", mlflow_uri=uri)


class Reference:
    """The uninterrupted tiny job, started in the background the first time a test asks for it (so it runs while
    that test's own job runs: two single-threaded jobs on two cores); :meth:`result` waits for it."""

    def __init__(self, env: FaultEnv, run_dir: Path) -> None:
        self.env, self.run_dir = env, run_dir
        self.log = run_dir.parent / "reference.log"
        # Its own MLflow store: it runs beside other jobs, and two processes never write one SQLite file at once here.
        self.mlflow_uri = f"sqlite:///{run_dir.parent / 'reference.db'}"
        self.proc = env.start(env.command(run_dir, "reference", mlflow_uri=self.mlflow_uri), self.log)
        self._result: dict[str, Any] | None = None

    def result(self) -> dict[str, Any]:
        """Final metrics and weights of the reference job."""
        if self._result is None:
            code = self.proc.wait(timeout=JOB_TIMEOUT_S)
            assert code == 0, f"the reference job exited {code}:\n{self.log.read_text()[-6000:]}"
            run = self.env.only_run("reference", self.mlflow_uri)
            self._result = {
                "metrics": self.env.final_metrics(run),
                "weights": self.env.system_weights(self.run_dir / "checkpoints" / LAST_CHECKPOINT),
            }
        return self._result


@pytest.fixture(scope="session")
def reference(fault_env: FaultEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    ref = Reference(fault_env, tmp_path_factory.mktemp("reference") / "run")
    yield ref
    if ref.proc.poll() is None:  # a test failed before it waited for the reference
        os.killpg(ref.proc.pid, signal.SIGKILL)
        ref.proc.wait()


@pytest.fixture
def in_process(fault_env: FaultEnv) -> Iterator[Callable[..., float]]:
    """Runs the tiny job inside the test process (``reid.pipeline.train`` on a composed config).

    Cheaper than a subprocess once torch is imported; restores the global torch state the job changes
    (deterministic algorithms, thread count).
    """
    import torch
    from hydra import compose, initialize_config_dir

    from reid.pipeline import train

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)

    def run(run_dir: Path, *overrides: str, experiment: str | None = None, world: bool = True) -> float:
        """Train; ``experiment`` logs to MLflow (else logger=none); ``world=False`` leaves the dataset to overrides."""
        logger = (
            ["logger=mlflow", f"logger.tracking_uri={fault_env.mlflow_uri}", f"logger.experiment_name={experiment}"]
            if experiment else ["logger=none"]
        )
        with initialize_config_dir(str(CONF_DIR)):
            cfg = compose(
                "train",
                overrides=[
                    *(TINY_JOB if world else JOB_SETTINGS),
                    f"paths.data_dir={fault_env.data_dir}",
                    f"paths.model_dir={fault_env.model_dir}",
                    f"paths.root_dir={ROOT}",
                    f"paths.output_dir={run_dir}",
                    *logger,
                    *overrides,
                ],
            )
        return train(cfg)

    try:
        yield run
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
