"""Shared fixtures. DUST_DIR is set before anything imports mwdust (it reads it at import time)."""
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("DUST_DIR", tempfile.mkdtemp(prefix="mwdust-"))

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLES = REPO.parent / "shared" / "real-samples"


def real_sample(name: str) -> Path:
    path = REAL_SAMPLES / name
    if not path.exists():
        pytest.skip(f"real sample {name} not found: ../shared/real-samples/ is absent on this machine")
    return path


@pytest.fixture(scope="session")
def small_sky(tmp_path_factory):
    """A 600-star mock sky (nside 8), built once per test session."""
    from pipeline.sky.build import SkyConfig, build_sky

    out = tmp_path_factory.mktemp("sky")
    manifest = build_sky(SkyConfig(n_stars=600, seed=7, nside=8, xp_partitions=2), out)
    return out, manifest
