"""Create a SQLite MLflow store's tables once, under a file lock, before parallel jobs use it.

MLflow's SqlAlchemyStore creates and migrates the tables of an empty database in whichever process opens it first,
without a lock: two jobs of a parallel sweep (or two commands started together) that open a fresh ``mlflow.db``
at the same moment both run the migrations, and one fails ("table already exists", "database is locked", an
alembic revision mismatch). Opening the store under ``<db>.lock`` makes the first opener create the tables and
the others find them.
"""
from __future__ import annotations

from pathlib import Path

SQLITE_PREFIX = "sqlite:///"


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``sqlite:////abs/x.db`` -> ``/abs/x.db``), else None."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    path = tracking_uri[len(SQLITE_PREFIX) :].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def prepare_store(tracking_uri: str) -> None:
    """For a SQLite URI: create the store's tables under a file lock beside the database (no-op otherwise)."""
    path = sqlite_path(tracking_uri)
    if path is None:
        return
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        MlflowClient(tracking_uri).search_experiments(max_results=1)  # opens the store: creates/migrates tables
