"""One throwaway MLflow store for the reporting tests (creating an SQLite schema costs seconds)."""
from __future__ import annotations

import pytest

from tests.report.store import Store, build_study_store


@pytest.fixture(scope="session")
def study_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return build_study_store(tmp_path_factory.mktemp("report-store"))
