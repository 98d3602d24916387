"""Shared fixtures. DUST_DIR is set before anything imports mwdust (it reads it at import time)."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

os.environ.setdefault("DUST_DIR", tempfile.mkdtemp(prefix="mwdust-"))

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLES = REPO.parent / "shared" / "real-samples"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# Two one-thread jobs side by side: the tiny run's jobs are mostly start-up (imports, MLflow), so two at
# a time finish it in ~5 min where one two-thread job at a time took ~7 (measured on 2 cores).
CORES = ("--cores", "2", "--max-threads", "1")


def benchmark_module(name: str):
    """A script of benchmarks/ (not a package) imported as a module, for its tests."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_snakemake(*args, cwd=REPO, env=None, timeout=1500):
    return subprocess.run([SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole workflow on the tiny preset with --cores 2, once per session: (folder, snakemake args).

    PIPELINE_TEST_TINY_RUN=<folder> reuses a finished tiny run there (mock sky in <folder>/sky,
    results in <folder>/results) when iterating on tests; CI always makes its own. A reused folder
    holds the MLflow runs of every invocation made on it, so the test that counts one invocation's
    runs fails there."""
    reuse = os.environ.get("PIPELINE_TEST_TINY_RUN")
    if reuse and not os.environ.get("CI"):
        tmp = Path(reuse)
        paths = tmp / "paths.yaml"
        paths.write_text(yaml.safe_dump({"paths": {"mock_sky": str(tmp / "sky"), "results": str(tmp / "results")}}))
        return tmp, (*CORES, "--configfile", "configs/tiny.yaml", str(paths))
    tmp = tmp_path_factory.mktemp("wf")
    paths = tmp / "paths.yaml"
    paths.write_text(yaml.safe_dump({"paths": {"mock_sky": str(tmp / "sky"), "results": str(tmp / "results")}}))
    args = (*CORES, "--configfile", "configs/tiny.yaml", str(paths))
    proc = run_snakemake(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (tmp / "run.out").write_text(proc.stdout + proc.stderr)
    return tmp, args


def xp_arrays(table) -> dict:
    """An XP continuous table read from Parquet (list columns, None for a missing band) as the dict
    of arrays the mock's writers take: list columns as 2-d arrays, a missing band as a row of NaN."""
    import numpy as np

    def rows(column):
        width = max(len(r) for r in column if r is not None)
        return np.stack([np.full(width, np.nan) if r is None else np.asarray(r, float) for r in column])

    return {c: rows(table[c]) if table[c].dtype == object else table[c].to_numpy() for c in table.columns}


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


def pytest_collection_modifyitems(items):
    """Every test that needs the session's whole-workflow run is ``slow``: ``make test-fast`` leaves them out."""
    for item in items:
        if "tiny_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


def scheduled(output: str) -> dict:
    """Rule -> job count from the "Job stats" table of a dry run."""
    jobs, on = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            on = True
            continue
        parts = line.split()
        if on and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            jobs[parts[0]] = int(parts[1])
        elif on and parts and parts[0] == "total":
            break
    return jobs


def tiny_store(tmp_path, n=600, seed=0):
    """A token store of n stars whose XP coefficients carry Teff (a third of the Teff labels missing)."""
    from pipeline.tokens.store import build_token_store
    from pipeline.tokens.vocab import BASE_VOCABULARY, vocabulary

    rng = np.random.default_rng(seed)
    teff = rng.normal(4800, 500, n)
    cols = {"source_id": np.arange(1, n + 1)}
    for t in BASE_VOCABULARY:
        x = rng.normal(size=n) + (teff - 4800) / 500 * (0.5 if t.startswith(("bp", "rp")) else 0.0)
        cols[t] = teff if t == "teff" else x
        cols[f"{t}_err"] = np.full(n, 50.0 if t == "teff" else 0.05)
    cat = pd.DataFrame(cols)
    cat.loc[rng.random(n) < 0.3, "teff"] = np.nan
    path = tmp_path / "stars.zarr"
    build_token_store(cat, path, vocabulary(), chunk_stars=128)
    return path
