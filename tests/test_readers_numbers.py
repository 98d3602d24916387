"""Every numeric column of every reader, in every format it takes: a value that is not a number (a
unit suffix, a word) is an error naming the file, the column, the first bad row and its value,
whatever dtype pandas, pyarrow or astropy gave the column (issue 33, item 2)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from conftest import xp_arrays
from pipeline.catalog.crossmatch import GAIA_COLUMNS
from pipeline.io.readers import InputFileError, read_allstar, read_gaia_source
from pipeline.io.xp_readers import read_xp_coefficients
from pipeline.sky.writers import write_xp_archive_csv
from pipeline.vac.mass_age import read_mass_age_table

BAD_ROW = 4


def _with_text(df: pd.DataFrame, column: str, value: str) -> pd.DataFrame:
    """``df`` with ``column`` as text (object dtype), row BAD_ROW holding ``value`` and row 1 empty (allowed)."""
    text = df[column].map(lambda x: repr(x.item() if hasattr(x, "item") else x)).astype(object)
    text.iloc[BAD_ROW] = value
    return df.assign(**{column: text})


def _archive_json(df: pd.DataFrame, path: Path):
    kinds = {"f": "double", "i": "long", "u": "long", "b": "boolean"}
    meta = [{"name": c, "datatype": kinds.get(df[c].dtype.kind, "char")} for c in df.columns]
    rows = [
        [None if (isinstance(v, float) and np.isnan(v)) else (v.item() if hasattr(v, "item") else v) for v in r]
        for r in df.itertuples(index=False)
    ]
    path.write_text(json.dumps({"metadata": meta, "data": rows}))


def _write(df: pd.DataFrame, path: Path) -> Path:
    ext = path.suffix
    if ext == ".parquet":
        df.to_parquet(path)
    elif ext == ".csv":
        df.to_csv(path, index=False)
    elif ext == ".ecsv":
        Table.from_pandas(df).write(path, format="ascii.ecsv")
    elif ext == ".fits":
        Table.from_pandas(df).write(path)
    elif ext == ".json":
        _archive_json(df, path)
    return path


@pytest.fixture(scope="module")
def tables(small_sky):
    sky, _ = small_sky
    gaia = pd.read_parquet(sky / "gaia_source.parquet", columns=list(GAIA_COLUMNS)).head(12).reset_index(drop=True)
    distmass = Table.read(sky / "distmass.fits").to_pandas().head(12)
    for c in distmass.columns:
        if distmass[c].dtype == object:
            distmass[c] = distmass[c].map(lambda s: s.decode().strip() if isinstance(s, bytes) else s)
    xp = pd.read_parquet(sorted((sky / "xp_continuous").glob("*.parquet"))[0]).head(12).reset_index(drop=True)
    return {"sky": sky, "gaia": gaia, "distmass": distmass, "xp": xp}


def _expect(err, path, column, value):
    msg = str(err.value)
    for part in (Path(path).name, f"column {column}", f"row {BAD_ROW}", repr(value)):
        assert part in msg, msg


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ecsv", "fits", "json"])
@pytest.mark.parametrize("column", ["parallax", "phot_g_mean_mag", "astrometric_params_solved"])
def test_gaia_source(tables, tmp_path, fmt, column):
    path = _write(_with_text(tables["gaia"], column, "0.418mas"), tmp_path / f"gaia_source.{fmt}")
    with pytest.raises(InputFileError) as err:
        read_gaia_source(path, GAIA_COLUMNS)
    _expect(err, path, column, "0.418mas")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ecsv", "fits", "json"])
@pytest.mark.parametrize("column", ["MASS", "AGE_ERR"])
def test_distmass(tables, tmp_path, fmt, column):
    path = _write(_with_text(tables["distmass"], column, "1.2 Msun"), tmp_path / f"distmass.{fmt}")
    with pytest.raises(InputFileError) as err:
        read_mass_age_table(path)
    _expect(err, path, column, "1.2 Msun")


def test_allstar_fits_string_column(tables, tmp_path):
    t = Table.read(tables["sky"] / "allStar.fits", hdu=1)[:12]
    logg = np.array([f"{x:.3f}" for x in t["LOGG"]])
    logg[BAD_ROW] = "giant"
    t.replace_column("LOGG", logg)
    path = tmp_path / "allStar.fits"
    t.write(path)
    with pytest.raises(InputFileError) as err:
        read_allstar(path, ["APOGEE_ID", "TEFF", "LOGG"])
    _expect(err, path, "LOGG", "giant")


def _xp_text(tables, tmp_path, name) -> Path:
    path = tmp_path / name
    write_xp_archive_csv(path, xp_arrays(tables["xp"]))
    return path


@pytest.mark.parametrize("fmt", ["csv", "ecsv"])
@pytest.mark.parametrize("column,value", [("bp_n_relevant_bases", "many"), ("source_id", "4295806720x"), ("rp_coefficients", "1.5e-3x")])
def test_xp_archive_text(tables, tmp_path, fmt, column, value):
    src = _xp_text(tables, tmp_path, "full.csv")
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    if column.endswith("_coefficients"):
        items = df.loc[BAD_ROW, column].strip("()").split(", ")
        items[7] = value
        df.loc[BAD_ROW, column] = "(" + ", ".join(items) + ")"
    else:
        df.loc[BAD_ROW, column] = value
    path = tmp_path / f"XpContinuousMeanSpectrum_000001-000002.{fmt}"
    body = df.to_csv(index=False)
    # the archive's ECSV: the CSV under a commented YAML header naming a comma delimiter
    header = "# %ECSV 1.0\n# ---\n# delimiter: ','\n# datatype: []\n" if fmt == "ecsv" else ""
    path.write_text(header + body)
    with pytest.raises(InputFileError) as err:
        read_xp_coefficients(path)
    _expect(err, path, column, value)


@pytest.mark.parametrize("column", ["rp_n_relevant_bases", "source_id", "bp_coefficients"])
def test_xp_parquet_text(tables, tmp_path, column):
    xp = tables["xp"].copy()
    if column == "bp_coefficients":
        bad = [None if r is None else [repr(float(x)) for x in r] for r in xp[column]]
        bad[BAD_ROW][3] = "n/a"
        xp[column] = bad
        value = "n/a"
        row_hint = None  # a list column reports the flat element's row
    else:
        xp = _with_text(xp, column, "n/a")
        value, row_hint = "n/a", BAD_ROW
    path = tmp_path / "XpContinuousMeanSpectrum_000001-000002.parquet"
    xp.to_parquet(path)
    with pytest.raises(InputFileError) as err:
        read_xp_coefficients(path)
    msg = str(err.value)
    assert path.name in msg and f"column {column}" in msg and repr(value) in msg, msg
    if row_hint is not None:
        assert f"row {row_hint}" in msg, msg


def test_xp_fits_flat_layout_string_column(tables, tmp_path):
    d = xp_arrays(tables["xp"])
    cols = {"source_id": d["source_id"]}
    for b in ("bp", "rp"):
        for k in range(55):
            cols[f"{b}_coeff_{k}"] = d[f"{b}_coefficients"][:, k]
            cols[f"e_{b}_coeff_{k}"] = d[f"{b}_coefficient_errors"][:, k]
        cols[f"{b}_n_relevant_bases"] = d[f"{b}_n_relevant_bases"]
    text = np.array([f"{x:.6g}" for x in cols["rp_coeff_2"]])
    text[BAD_ROW] = "bad"
    cols["rp_coeff_2"] = text
    path = tmp_path / "XpContinuousMeanSpectrum_000001-000002.fits"
    Table(cols).write(path)
    with pytest.raises(InputFileError) as err:
        read_xp_coefficients(path)
    _expect(err, path, "rp_coeff_2", "bad")


def test_empty_text_is_a_missing_value_not_an_error(tables, tmp_path):
    df = _with_text(tables["gaia"], "parallax", "")
    back = read_gaia_source(_write(df, tmp_path / "g.csv"), GAIA_COLUMNS)
    assert np.isnan(back.parallax[BAD_ROW]) and np.isfinite(back.parallax.drop(BAD_ROW)).all()
