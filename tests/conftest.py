"""Shared fixtures: the read-only Timeloop reference data and its cases."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "timeloop-reference"


def _reference_or_skip() -> Path:
    if not (REFERENCE / "cases.yaml").is_file():
        pytest.skip(f"Timeloop reference data not found at {REFERENCE} (read-only shared data set)")
    return REFERENCE


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``<repo>/../shared/timeloop-reference``; skips the test when it is absent."""
    return _reference_or_skip()


@pytest.fixture(scope="session")
def reference_cases(reference_dir) -> dict:
    """The cases of ``cases.yaml`` keyed by id."""
    data = yaml.safe_load((reference_dir / "cases.yaml").read_text())
    return {c["id"]: c for c in data["cases"]}


def reference_case_ids() -> list:
    """Case ids for parametrisation (empty when the data set is absent)."""
    path = REFERENCE / "cases.yaml"
    if not path.is_file():
        return []
    return [c["id"] for c in yaml.safe_load(path.read_text())["cases"]]


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    yield
