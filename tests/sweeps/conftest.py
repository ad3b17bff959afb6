"""Shared fixtures for the sweep tests: a tiny synthetic world, one MLflow store, a throwaway PostgreSQL server.

These are the suite's slow tests: each runs ``python -m reid.train -m ...`` as a subprocess from the project root,
as a user would, with ``debug=fast`` on a world of 8 identities.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.shared import TINY_WORLD

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"

# The smoke configuration every sweep job runs. These tests check tracking and study bookkeeping, not the methods:
# the randomly initialised tiny CLIP (no caption pretraining) and the baseline (no prompt stage) keep jobs to
# seconds; plots and the untrained evaluation are off.
FAST_JOB = (
    "experiment=demo", "debug=fast", "backbone=clip_tiny", "method=baseline", "eval.at_start=false", "eval.plots=false",
    "method.stage2.batch_size=16",  # P = 4: the presets' validation split leaves 6 of the 8 training identities
    *TINY_WORLD,
)
FINAL_METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP")

SWEEP_TIMEOUT_S = 900  # a whole sweep subprocess, on a loaded 2-core machine
MAX_RUNS = 1000  # per experiment; the tests create a handful

# PostgreSQL for the shared-storage test; REID_PG_BIN points elsewhere on other distributions.
PG_BIN = Path(os.environ.get("REID_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_OS_USER = "postgres"  # initdb refuses to run as root; as root the server runs as this user
PG_DB_USER = "reid"


def _clean_env() -> dict[str, str]:
    """The test process's environment without a sweep context of its own (a parent run, per-job tags)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REID_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class SweepEnv:
    """Builds and runs sweep commands against the session's world and MLflow store."""

    data_dir: Path
    mlflow_uri: str
    final_metrics: tuple[str, ...] = FINAL_METRICS

    def command(self, experiment: str, sweep_dir: Path, *overrides: str) -> list[str]:
        return [
            sys.executable, "-m", "reid.train", "-m", *FAST_JOB,
            f"paths.data_dir={self.data_dir}",
            f"logger.tracking_uri={self.mlflow_uri}",
            f"logger.experiment_name={experiment}",
            f"hydra.sweep.dir={sweep_dir}",
            *overrides,
        ]

    def run(self, cmd: list[str]) -> subprocess.CompletedProcess:
        """Run a sweep to the end; fails the test with the output's tail if it exits non-zero."""
        done = subprocess.run(cmd, cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S)
        assert done.returncode == 0, f"sweep exited {done.returncode}:\n{(done.stdout + done.stderr)[-6000:]}"
        return done

    def start(self, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a sweep in its own process group (so it can be killed whole), output to ``log``; ``env`` adds
        variables (a hold barrier's)."""
        with log.open("w") as out:
            return subprocess.Popen(
                cmd, cwd=ROOT, env={**_clean_env(), **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL a started sweep and everything it spawned: the harshest interruption (no cleanup code runs)."""
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=SWEEP_TIMEOUT_S)

    def runs(self, experiment: str) -> list:
        """Every run of an MLflow experiment in the session's store (parents and children)."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.mlflow_uri)
        exp = client.get_experiment_by_name(experiment)
        assert exp is not None, f"no MLflow experiment {experiment!r}"
        return list(client.search_runs([exp.experiment_id], max_results=MAX_RUNS))


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow SQLite store for the session (creating its schema costs seconds); tests use their own experiments."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def sweep_env(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> SweepEnv:
    """One tiny synthetic world (generated here, once) and the session's MLflow store for all sweep tests."""
    from hydra import compose, initialize_config_dir

    from reid.data import load_dataset

    data_dir = tmp_path_factory.mktemp("sweeps") / "data"
    with initialize_config_dir(str(CONF_DIR)):
        cfg = compose("train", overrides=list(FAST_JOB))
    load_dataset(cfg.dataset.name, data_dir, **cfg.dataset.options)
    return SweepEnv(data_dir=data_dir, mlflow_uri=mlflow_uri)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL (psycopg 3 driver, as docs/sweeps.md uses)."""
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free local port, trust auth, removed afterwards.

    pytest-postgresql's ``postgresql_proc`` runs initdb as the current user, which PostgreSQL refuses when that is
    root (as in the project's containers); here the same binaries run as the ``postgres`` user then.
    """
    initdb, pg_ctl = PG_BIN / "initdb", PG_BIN / "pg_ctl"
    if not (initdb.is_file() and pg_ctl.is_file()):
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl) not found in {PG_BIN}; set REID_PG_BIN")
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="reid-pg-"))  # not pytest's 0700 tmp: the server's user must enter it
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(PG_OS_USER)
        except KeyError:
            shutil.rmtree(base)
            pytest.skip(f"running as root and there is no {PG_OS_USER!r} user to run initdb as (it refuses root)")
        if shutil.which("runuser") is None:
            shutil.rmtree(base)
            pytest.skip("running as root without runuser to start PostgreSQL as another user")
        os.chown(base, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", PG_OS_USER, "--"]
    data, port = base / "data", _free_port()
    subprocess.run(
        [*as_user, str(initdb), "-D", str(data), "-A", "trust", "-U", PG_DB_USER, "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_user, str(pg_ctl), "-D", str(data), "-l", str(base / "server.log"), "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield PostgresServer(host="127.0.0.1", port=port, user=PG_DB_USER)
    finally:
        subprocess.run([*as_user, str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


# MLflow's HTTP client retries a refused connection for minutes by default; a test's clients give up at once and the
# reid tracker's own bounded retries and journal are what is under test. A killed server refuses at once, so the
# request timeout only guards a live server slowed by a loaded machine: long, so slowness is never taken for an outage.
SHORT_MLFLOW_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
}
SERVER_START_TIMEOUT_S = 300  # a safety net for a hung start on a loaded machine; readiness is the health check


@dataclass
class MlflowServer:
    """A real ``mlflow server`` process on a PostgreSQL backend store and a local artifact root (proxied artifact
    uploads, so artifacts too go through the server), restartable on the same port and stores."""

    backend_uri: str
    artifacts: Path
    port: int
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and return once it answers its health check (fails with its log if it exits)."""
        import time
        import urllib.request

        cmd = [
            str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1",
        ]
        env = {**_clean_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job runner: a faster start
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"mlflow server exited ({self.proc.returncode}):\n{self.log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer within {SERVER_START_TIMEOUT_S} s:\n"
                            f"{self.log.read_text()[-4000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the server and its workers (no shutdown code runs), and reap it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=60)
            self.proc = None


@pytest.fixture(scope="module")
def mlflow_server(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """One tracking server per test module, on its own PostgreSQL database; tests kill and restart it."""
    base = tmp_path_factory.mktemp("mlflow-server")
    backend = postgres_server.create_database(f"mlflow_{base.name.replace('-', '_')}")
    server = MlflowServer(backend_uri=backend, artifacts=base / "artifacts", port=_free_port(), log=base / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()
