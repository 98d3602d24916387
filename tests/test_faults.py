"""Fault injection: the workflow and its readers tried as a hostile user (or a bad day) would.

Each fault is made on purpose and checked for three things: the message (it names the file, the
column or the key, and says what to do), what survived (the user's files untouched, nothing
half-written that a rerun would trust) and, for interruptions, that a rerun ends with the
uninterrupted run's outputs (to the reproducibility stated in model/train.py).

The workflow-level faults share the session's one tiny run (conftest.tiny_run): each works on a
copy of it, so they neither rerun the chain nor disturb the other tests.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_snakemake
from fault_helpers import TINY, _config, _hashes, _leftover_temporaries

pytestmark = pytest.mark.faults


def _real_inputs(data: Path) -> dict:
    return {
        "allstar": str(data / "allStar.fits"),
        "gaia_source": str(data / "gaia_source.parquet"),
        "xp_continuous": str(data / "xp_continuous"),
        "dust_dir": str(data / "dust"),
        "distmass": str(data / "distmass.fits"),
    }


# ------------------------------------------------------------------------------------------------
# 1. Inputs are read-only to the workflow


@pytest.fixture()
def data_folder(small_sky, tmp_path):
    """A folder of "real" survey files (a copy of the small mock sky, as a user's data)."""
    sky, _ = small_sky
    data = tmp_path / "data"
    shutil.copytree(sky, data)
    return data


@pytest.mark.parametrize("force", [False, True], ids=["run", "forceall"])
def test_a_missing_input_is_an_error_and_no_other_input_file_changes(data_folder, tmp_path, force):
    before = _hashes(data_folder)
    (data_folder / "dust/combined19/combine19.h5").unlink()
    cfg = _config(
        tmp_path,
        mock=False,
        inputs=_real_inputs(data_folder),
        paths={"mock_sky": str(tmp_path / "mock"), "results": str(tmp_path / "results")},
    )
    proc = run_snakemake("--cores", "1", *TINY, str(cfg), *(["-F"] if force else []))
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "inputs.dust_dir" in text and "combine19.h5 does not exist" in text and "never makes them" in text, text[-2000:]
    after = _hashes(data_folder)
    del before["dust/combined19/combine19.h5"]
    assert after == before  # every other file byte for byte, and no mock map made in its place
    assert not (tmp_path / "mock").exists() and not (tmp_path / "results/catalog").exists()


def test_with_mock_false_there_is_no_sky_rule(data_folder, tmp_path):
    cfg = _config(
        tmp_path,
        mock=False,
        inputs=_real_inputs(data_folder),
        paths={"mock_sky": str(tmp_path / "mock"), "results": str(tmp_path / "results")},
    )
    proc = run_snakemake("--cores", "1", *TINY, str(cfg), "-n", "-F")
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = proc.stdout + proc.stderr
    assert "rule catalog:" in jobs and "rule sky:" not in jobs and "rule catalog_validation:" not in jobs
    assert "not run: SpectraFM: inputs.aspcapstar is empty" in jobs  # a branch left out is said, with its reason


def test_results_inside_a_folder_of_inputs_are_refused(data_folder, tmp_path):
    cfg = _config(
        tmp_path,
        mock=False,
        inputs=_real_inputs(data_folder),
        paths={"mock_sky": str(tmp_path / "mock"), "results": str(data_folder / "results")},
    )
    proc = run_snakemake("--cores", "1", *TINY, str(cfg), "-n")
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "which holds inputs." in text and "paths.results" in text, text[-2000:]
    # the old key, which the schema once described as "the folder of the raw survey files"
    old = _config(tmp_path, paths={"sky": str(data_folder), "results": str(tmp_path / "r")})
    proc = run_snakemake("--cores", "1", *TINY, str(old), "-n")
    assert proc.returncode != 0 and "paths.sky was renamed to paths.mock_sky" in proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------------
# 2. Wrong inputs, named where they are first seen


def _fits_with(src: Path, dest: Path, **changes):
    from astropy.table import Table

    t = Table.read(src, hdu=1)
    for name, fn in changes.items():
        values = fn(t[name])
        t.replace_column(name, values)
    t.write(dest, overwrite=True)
    return dest


def _truncate(src: Path, dest: Path, fraction=0.5):
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


def _xp_csv(data: Path, dest: Path):
    """One XP partition in the archive's CSV layout."""
    src = sorted((data / "xp_continuous").glob("*.parquet"))[0]
    df = pd.read_parquet(src)
    for c in df.columns:
        if c.endswith(("_coefficients", "_coefficient_errors")):
            df[c] = ["(" + ", ".join(f"{x:.6g}" for x in v) + ")" if v is not None else "" for v in df[c]]
    df.to_csv(dest, index=False)
    return dest


def _parallax_text(d):
    """gaia_source with its parallax as text: an empty value (allowed: no parallax) and a unit suffix (not a number)."""
    g = pd.read_parquet(d / "gaia_source.parquet")
    text = g.parallax.map(repr).astype("string")
    text.iloc[3], text.iloc[7] = "", "0.418mas"
    return g.assign(parallax=text)


FAULTS = {
    # name: (how to make it from the data folder -> kwargs of build_catalog, expected message parts)
    "truncated allStar FITS": (
        lambda d, t: {"allstar_path": _truncate(d / "allStar.fits", t / "allStar.fits")},
        ["allStar.fits", "could not be read", "truncated"],
    ),
    "truncated gaia_source Parquet": (
        lambda d, t: {"gaia_path": _truncate(d / "gaia_source.parquet", t / "gaia_source.parquet")},
        ["gaia_source.parquet", "could not be read", "truncated"],
    ),
    "truncated XP Parquet partition": (
        lambda d, t: {
            "xp_path": _truncate(sorted((d / "xp_continuous").glob("*.parquet"))[0], t / "XpContinuousMeanSpectrum_000001-000002.parquet")
        },
        ["XpContinuousMeanSpectrum_000001-000002.parquet", "could not be read"],
    ),
    "truncated XP CSV partition": (
        lambda d, t: {"xp_path": _truncate(_xp_csv(d, t / "full.csv"), t / "Xp_cut.csv", 0.61)},
        ["Xp_cut.csv", "cut short"],
    ),
    "TEFF holding text": (
        lambda d, t: {"allstar_path": _fits_with(d / "allStar.fits", t / "allStar.fits", TEFF=lambda c: np.array(["hot"] * len(c)))},
        ["allStar.fits", "column TEFF must hold numbers", "'hot'"],
    ),
    "all-NaN TEFF": (
        lambda d, t: {
            "allstar_path": _fits_with(d / "allStar.fits", t / "allStar.fits", TEFF=lambda c: np.full(len(c), np.nan, np.float32))
        },
        ["allStar.fits", "column TEFF has no usable value"],
    ),
    "every label flagged": (
        lambda d, t: {"allstar_path": _fits_with(d / "allStar.fits", t / "allStar.fits", STARFLAG=lambda c: np.ones(len(c), c.dtype))},
        ["allStar.fits", "is flagged", "catalog.require_starflag_zero"],
    ),
    "empty gaia_source table": (
        lambda d, t: {"gaia_path": _write(pd.read_parquet(d / "gaia_source.parquet").iloc[:0], t / "gaia.parquet")},
        ["gaia.parquet", "the table is empty"],
    ),
    "header-only gaia_source CSV": (
        lambda d, t: {"gaia_path": _write(pd.read_parquet(d / "gaia_source.parquet").iloc[:0], t / "gaia.csv")},
        ["gaia.csv", "the table is empty"],
    ),
    "parallax holding text (Parquet string column)": (
        lambda d, t: {"gaia_path": _write(_parallax_text(d), t / "gaia.parquet")},
        ["gaia.parquet", "column parallax must hold numbers", "'0.418mas'"],
    ),
    "parallax holding text (CSV)": (
        lambda d, t: {"gaia_path": _write(_parallax_text(d), t / "gaia.csv")},
        ["gaia.csv", "column parallax must hold numbers", "'0.418mas'"],
    ),
    "gaia_source column renamed": (
        lambda d, t: {
            "gaia_path": _write(pd.read_parquet(d / "gaia_source.parquet").rename(columns={"parallax": "plx"}), t / "gaia.parquet")
        },
        ["gaia.parquet", "missing required column", "parallax"],
    ),
}


def _write(df, path):
    df.to_parquet(path) if path.suffix == ".parquet" else df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_wrong_input_is_named_where_it_is_read(fault, data_folder, tmp_path, monkeypatch):
    from pipeline.catalog.build import CatalogConfig, build_catalog

    make, expected = FAULTS[fault]
    kwargs = {
        "allstar_path": data_folder / "allStar.fits",
        "gaia_path": data_folder / "gaia_source.parquet",
        "xp_path": data_folder / "xp_continuous",
        "dust_dir": data_folder / "dust",
    }
    kwargs.update(make(data_folder, tmp_path))
    with pytest.raises(ValueError) as err:
        build_catalog(
            cfg=CatalogConfig.from_dict({"extinction": {"n_samples": 5, "chunk_stars": 500, "seed": 1, "cluster": "local"}}), **kwargs
        )
    for part in expected:
        assert part in str(err.value), (fault, str(err.value))


def test_a_damaged_token_store_is_named(tmp_path):
    from pipeline.model.data import TokenSampler
    from pipeline.model.settings import TrainConfig
    from test_model import _tiny_store

    store = _tiny_store(tmp_path, n=300)
    chunk = sorted((store / "values/c").rglob("*"), key=lambda p: p.stat().st_size)[-1]
    _truncate(chunk, chunk, 0.3)  # a truncated chunk: found when it is read
    stream = TokenSampler(store, "train", TrainConfig(batch_size=64, resident="stream").sampling(), 32)
    with pytest.raises(ValueError, match=r"stars.zarr: could not be read as a Zarr token store"):
        list(stream)
    with pytest.raises(ValueError, match=r"stars.zarr: could not be read as a Zarr token store"):
        TokenSampler(store, "train", TrainConfig(batch_size=64, resident="memory").sampling(), 32)  # held on the device: read at once
    chunk.unlink()  # a lost chunk file: found when the store is opened (never read as NaN)
    with pytest.raises(ValueError, match=r"stars.zarr: array values is damaged \(\d+ of \d+ chunk files"):
        TokenSampler(store, "train", TrainConfig(batch_size=64).sampling(), 32)


def test_predict_on_empty_or_foreign_tables_says_what_is_wrong(tmp_path, capsys):
    from pipeline.__main__ import main
    from pipeline.model.model import preset
    from pipeline.model.train import TrainConfig, train
    from test_model import _tiny_store

    store = _tiny_store(tmp_path, n=300)
    train(store, tmp_path / "m", preset("tiny"), TrainConfig(epochs_per_cycle=1, cycles=1, batch_size=64, threads=1), resume=False)
    cases = {
        "empty.csv": ("", "the file is empty"),
        "header.csv": ("teff,logg\n", "the table is empty"),
        "foreign.csv": ("a,b\n1,2\n", "none of its columns"),
        "text.csv": ("teff,logg\nhot,2.5\n", "column teff must hold numbers"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        out = tmp_path / f"{name}.out.csv"
        rc = main(["predict", "--model", str(tmp_path / "m"), "--input", str(tmp_path / name), "--request", "logg", "--output", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and not out.exists(), name
        assert f"error: {tmp_path / name}" in err and message in err, (name, err)
    (tmp_path / "ok.csv").write_text("bp0,jh\n0.1,0.5\n")
    run = ["predict", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "ok.csv"), "--request", "logg"]
    assert main([*run, "--output", str(tmp_path / "x.txt")]) == 2  # a format we do not write is refused before any work
    assert "error: --output" in capsys.readouterr().err and not (tmp_path / "x.txt").exists()
    assert main([*run, "--output", str(tmp_path / "no" / "x.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_full_disk_in_the_cli_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    import pipeline.__main__ as cli

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli, "claims", full)
    rc = cli.main(["claims", "--results", str(tmp_path), "--readme", str(tmp_path / "README.md")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and err.startswith("error: no space left on the device writing")


# ------------------------------------------------------------------------------------------------
# 3. Faults of the environment


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_tracking_server_fails_at_once_and_says_how_to_go_on(data_folder, tmp_path):
    cfg = _config(
        tmp_path,
        mock=False,
        inputs=_real_inputs(data_folder),
        paths={"mock_sky": str(tmp_path / "mock"), "results": str(tmp_path / "results")},
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{_free_port()}"}
    t0 = time.perf_counter()
    proc = run_snakemake("--cores", "1", *TINY, str(cfg), env=env)
    seconds = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and seconds < 60, seconds
    assert "is unreachable" in text and "mlflow: {enabled: false}" in text and "MLFLOW_TRACKING_URI" in text, text[-2000:]
    assert not (tmp_path / "results/catalog").exists()
    # and switching tracking off from the command line works (the value arrives as a string)
    proc = run_snakemake("--cores", "1", *TINY, str(cfg), "-n", "--config", "mlflow={enabled: false}", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_closing_the_workflow_run_on_a_broken_store_only_warns(tmp_path, monkeypatch, caplog):
    from pipeline.workflow import jobs, tracking

    monkeypatch.setenv(tracking.ENV_PARENT, "0123456789abcdef")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/no/such/dir/mlflow.db")
    jobs.end_workflow_run({"paths": {"results": str(tmp_path)}}, "FAILED")  # no exception
    assert "could not close the workflow run" in caplog.text


@pytest.fixture()
def full_disk(tmp_path):
    """A 400 kB tmpfs: mounted when root and allowed, else the test is skipped with the reason."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a small tmpfs needs root to mount; not root here")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_a_full_disk_says_so_and_leaves_nothing_half_written(full_disk, tmp_path):
    from pipeline.io.atomic import DiskFullError, write_json
    from pipeline.model.model import preset
    from pipeline.model.train import TrainConfig, train
    from test_model import _tiny_store

    store = _tiny_store(tmp_path, n=300)
    with pytest.raises(DiskFullError, match=r"no space left on device while writing .*\.pt"):
        train(
            store, full_disk / "model", preset("small"), TrainConfig(epochs_per_cycle=1, cycles=1, batch_size=64, threads=1), resume=False
        )
    assert _leftover_temporaries(full_disk) == [] and not (full_disk / "model/last.pt").exists()
    (full_disk / "filler").write_bytes(b"\0" * 300_000)
    with pytest.raises(DiskFullError, match="no space left on device while writing .*metrics.json"):
        write_json({"x": list(range(100_000))}, full_disk / "metrics.json")
    assert _leftover_temporaries(full_disk) == [] and not (full_disk / "metrics.json").exists()


# ------------------------------------------------------------------------------------------------
# 4. Interruptions: tests/test_interruptions.py. 5. Formats and folders


def test_the_same_gaia_source_in_every_format_reads_to_the_same_numbers(tmp_path, small_sky):
    """CSV, ECSV, FITS and Parquet copies of one gaia_source table read back bit for bit alike (the
    archive's column types; a float32 magnitude read from text as float64 moved 7 stars' flags)."""
    from astropy.table import Table

    from pipeline.catalog.crossmatch import GAIA_COLUMNS
    from pipeline.io.readers import read_gaia_source

    source = small_sky[0] / "gaia_source.parquet"
    g = pd.read_parquet(source, columns=list(GAIA_COLUMNS))
    ref = read_gaia_source(source, GAIA_COLUMNS)
    g.to_csv(tmp_path / "g.csv", index=False)
    Table.from_pandas(g).write(tmp_path / "g.fits")
    Table.from_pandas(g).write(tmp_path / "g.ecsv")
    for ext in ("csv", "ecsv", "fits"):
        back = read_gaia_source(tmp_path / f"g.{ext}", GAIA_COLUMNS)
        pd.testing.assert_frame_equal(back, ref, check_exact=True, obj=ext)


def test_the_results_folder_of_a_configuration_is_where_make_run_writes_the_report(tmp_path, capsys):
    """`python -m pipeline results-folder <snakemake args>`: paths.results of config.yaml under the
    --configfile files (the last wins), from the working folder -d names."""
    from pipeline.__main__ import main

    (tmp_path / "mine.yaml").write_text("paths: {results: my-results}\n")
    (tmp_path / "abs.yaml").write_text(f"paths: {{results: {tmp_path / 'elsewhere'}}}\n")
    for args, expected in [
        ([], "results"),
        (["--cores", "2", "--configfile", "configs/tiny.yaml"], "results"),
        (["--configfile", str(tmp_path / "mine.yaml"), "--max-threads", "1"], "my-results"),
        (["-d", str(tmp_path), "--configfile", "mine.yaml"], str(tmp_path / "my-results")),
        (["--configfile", str(tmp_path / "mine.yaml"), str(tmp_path / "abs.yaml")], str(tmp_path / "elsewhere")),
    ]:
        assert main(["results-folder", *args]) == 0
        assert capsys.readouterr().out.strip() == expected, args
