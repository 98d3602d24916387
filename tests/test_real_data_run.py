"""A real-data run as a user makes it (issue 33): ``mock: false`` on user-shaped files (the small mock
sky rewritten in the archive's CSV layouts beside its FITS files), from a working folder of the
user's own, with the checkout's Snakefile (``snakemake -s <checkout>/Snakefile -d <folder>``), end to
end; the user's files unchanged to the byte, the outputs present, the branches left out said; and
the results folder's lock (one results folder, one run) refusing a second invocation."""

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import CORES, REPO, run_snakemake, xp_arrays

pytestmark = pytest.mark.faults


def _hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _user_files(sky: Path, data: Path):
    """The mock sky's files as a user has them: gaia_source and XP continuous as the archive's CSV,
    allStar and DistMass as FITS, the dust maps as they are."""
    from pipeline.sky.writers import write_xp_archive_csv

    data.mkdir()
    pd.read_parquet(sky / "gaia_source.parquet").to_csv(data / "gaia_source.csv", index=False)
    for name in ("allStar.fits", "distmass.fits"):
        shutil.copy2(sky / name, data / name)
    shutil.copytree(sky / "dust", data / "dust")
    (data / "xp_continuous").mkdir()
    for part in sorted((sky / "xp_continuous").glob("*.parquet")):
        write_xp_archive_csv(data / "xp_continuous" / part.with_suffix(".csv").name, xp_arrays(pd.read_parquet(part)))


@pytest.fixture(scope="module")
def user_run(small_sky, tmp_path_factory):
    """(working folder, snakemake args, hashes of the user's files before, the run's output)."""
    sky, _ = small_sky
    home = tmp_path_factory.mktemp("user")
    _user_files(sky, home / "data")
    work = home / "analysis"
    work.mkdir()
    (work / "my-stars.yaml").write_text(
        yaml.safe_dump(
            {
                "mock": False,
                "inputs": {
                    "allstar": "../data/allStar.fits",
                    "gaia_source": "../data/gaia_source.csv",
                    "xp_continuous": "../data/xp_continuous",
                    "dust_dir": "../data/dust",
                    "distmass": "../data/distmass.fits",
                },
                "paths": {"results": "results", "mock_sky": "no-mock-sky"},
                "evaluate": {"tasks": ["spectra_to_parameters"]},  # one task: the others read the same files
            }
        )
    )
    args = ("-s", str(REPO / "Snakefile"), "-d", str(work), *CORES, "--configfile", str(REPO / "configs/tiny.yaml"), "my-stars.yaml")
    before = _hashes(home / "data")
    t0 = time.time()
    proc = run_snakemake(*args, cwd=work)
    seconds = time.time() - t0
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"the real-data run: {seconds:.0f} s")
    return work, args, before, proc.stdout + proc.stderr


def test_a_real_data_run_from_a_working_folder_of_ones_own(user_run):
    work, _, before, out = user_run
    assert _hashes(work.parent / "data") == before, "the user's files are read-only to the workflow"
    results = work / "results"  # paths.results, relative to the working folder
    for path in (
        "catalog/catalog.parquet",
        "tokens/stars.zarr",
        "models/tiny/heldout.json",
        "eval/summary.csv",
        "eval/spectra_to_parameters/metrics.json",
        "eval/spectra_to_parameters/teff.png",
        "mass_age/counts.json",  # the DistMass FITS joined to the catalog
    ):
        assert (results / path).exists(), path
    assert not (work / "no-mock-sky").exists() and not (REPO / "no-mock-sky").exists()
    assert not any(work.glob("workflow")), "the workflow's own files stay in the checkout"
    # the branches a real-data run leaves out are said, with their reasons
    assert "not run: SpectraFM: inputs.aspcapstar is empty" in out
    assert "not run: catalogue of every XP source (catalog_all): inputs.xp_all_xp_continuous is empty" in out
    assert not (results / ".pipeline.lock").exists(), "the lock is given back at the end"
    counts = json.loads((results / "catalog/counts.json").read_text())
    assert counts, counts


def test_a_second_run_on_a_locked_results_folder_is_refused_naming_the_holder(user_run):
    work, args, _, _ = user_run
    results = work / "results"
    target = "results/eval/spectra_to_parameters/teff.png"  # relative to the working folder, as paths.results
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        import psutil

        holder = {
            "host": socket.gethostname(),
            "pid": sleeper.pid,
            "start": "2026-12-04T09:00:00+0000",
            "start_unix": psutil.Process(sleeper.pid).create_time(),
            "workdir": "/another/checkout",
        }
        (results / ".pipeline.lock").write_text(json.dumps(holder))
        # a dry run takes no lock
        dry = run_snakemake(*args, "-n", "-f", target, cwd=work)
        assert dry.returncode == 0, dry.stderr[-3000:]
        proc = run_snakemake(*args, "-f", target, cwd=work)
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0
        for part in (f"pid {sleeper.pid}", socket.gethostname(), "2026-12-04T09:00:00", "/another/checkout", "--unlock"):
            assert part in text, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        assert json.loads((results / ".pipeline.lock").read_text()) == holder, "the holder's lock is left alone"
    finally:
        sleeper.kill()
        sleeper.wait()
    # its process gone, the lock is cleared with a message and the run goes on
    proc = run_snakemake(*args, "-f", target, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cleared the stale lock" in proc.stdout + proc.stderr
    assert not (results / ".pipeline.lock").exists()


def test_unlock_clears_a_lock_held_from_another_host(user_run):
    work, args, _, _ = user_run
    results = work / "results"
    lock = {"host": "login-node-7", "pid": 4242, "start": "2026-12-04T08:00:00+0000", "start_unix": 0.0, "workdir": "/scratch/x"}
    (results / ".pipeline.lock").write_text(json.dumps(lock))
    proc = run_snakemake(*args, "--unlock", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "login-node-7" in proc.stdout + proc.stderr and not (results / ".pipeline.lock").exists()


def test_the_same_data_in_the_archives_text_formats_give_the_same_catalog_and_tokens(user_run, small_sky):
    """The run read gaia_source and XP as CSV; the catalog and token store equal, to the bit, those of
    the same tables read from the sky's Parquet files (the archive's dtypes, whatever the format)."""
    from snakemake.utils import update_config

    from pipeline.catalog.build import CatalogConfig, build_catalog
    from pipeline.settings import keywords
    from pipeline.tokens.store import build_token_store, open_token_store
    from pipeline.tokens.vocab import vocabulary

    work, _, _, _ = user_run
    sky, _ = small_sky
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, yaml.safe_load((REPO / "configs/tiny.yaml").read_text()))
    reference, _ = build_catalog(
        sky / "allStar.fits", sky / "gaia_source.parquet", sky / "xp_continuous", sky / "dust", CatalogConfig.from_dict(config["catalog"])
    )
    ran = pd.read_parquet(work / "results/catalog/catalog.parquet")
    pd.testing.assert_frame_equal(
        ran, reference.reset_index(drop=True) if ran.index.equals(pd.RangeIndex(len(ran))) else reference, check_exact=True
    )
    tokens = dict(config["tokens"])
    settings = keywords(build_token_store, tokens, "tokens", ignore=("extra", "split"))
    if tokens.get("split") is not None:
        settings["split_fractions"] = tuple(tokens["split"][k] for k in ("train", "val", "test"))
    build_token_store(reference, work.parent / "reference.zarr", vocabulary(tokens.get("extra") or ()), **settings, config={})
    a, b = open_token_store(work / "results/tokens/stars.zarr"), open_token_store(work.parent / "reference.zarr")
    for name in ("values", "split"):
        np.testing.assert_array_equal(a[name][:], b[name][:])
