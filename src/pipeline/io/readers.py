"""Readers for the survey files, with errors that name the file, the column and what was expected.

Every reader turns a failure of the library underneath (a truncated FITS or Parquet file, a
CSV that is not one) into an ``InputFileError`` that names the file and says what to check,
instead of "buffer is too small for requested array" or "magic bytes not found in footer".
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd


class InputFileError(ValueError):
    """An input file that cannot be used as it is; the message names the file (and the column)."""


class MissingColumnsError(InputFileError):
    """A required column is absent from an input file."""


@contextlib.contextmanager
def reading(path, what: str):
    """Re-raise a library's error while reading ``path`` as an InputFileError naming the file."""
    try:
        yield
    except InputFileError:
        raise
    except FileNotFoundError as exc:
        raise InputFileError(f"{path}: not found ({what})") from exc
    except Exception as exc:
        # the builtin errors readers raise (RuntimeError: the Zarr codecs), or a library's own (pyarrow's ArrowInvalid)
        builtin = isinstance(exc, (OSError, ValueError, TypeError, KeyError, IndexError, EOFError, RuntimeError))
        if not builtin and type(exc).__module__.split(".")[0] not in ("pyarrow", "astropy", "pandas", "numpy", "h5py"):
            raise
        raise InputFileError(
            f"{path}: could not be read as {what} ({type(exc).__name__}: {exc}). Is the file complete "
            "(an interrupted download or copy leaves a truncated file) and in that format?"
        ) from exc


def require_whole_text_file(path):
    """A plain CSV/ECSV must end with a newline: one that stops mid-line was cut short (a
    truncated download or copy), and pandas would read its last row with missing fields.
    Gzipped files carry their own end marker (a cut one fails to decompress)."""
    p = Path(path)
    if p.suffix == ".gz" or p.stat().st_size == 0:
        return
    with open(p, "rb") as f:
        f.seek(-1, 2)
        if f.read(1) not in (b"\n", b"\r"):
            raise InputFileError(
                f"{path}: ends in the middle of a line: the file was cut short (an interrupted download or copy?); fetch it again"
            )


def numbers(values, path, column) -> np.ndarray:
    """A column of any dtype (numbers, or text from a CSV, a FITS string column, pandas' ``str``) as
    float64; empty text and "nan" are NaN, and text that is not a number is an error naming the
    file, the column, the first such row and its value."""
    v = np.asarray(values)
    if v.dtype.kind in "biuf":
        return v.astype(float)
    text = pd.Series(v, dtype=object).map(lambda x: x.decode() if isinstance(x, bytes) else x)
    missing = text.isna().to_numpy()
    text = text.astype(str).str.strip()
    empty = missing | text.eq("").to_numpy() | text.str.lower().isin(("nan", "null", "none", "--")).to_numpy()
    out = pd.to_numeric(text.where(~empty), errors="coerce").to_numpy(float)
    bad = np.isnan(out) & ~empty
    if bad.any():
        row = int(np.argmax(bad))
        raise InputFileError(f"{path}: column {column} must hold numbers; row {row} holds {text.iloc[row]!r} ({int(bad.sum())} such rows)")
    return out


def numeric_columns(df: pd.DataFrame, path, columns) -> pd.DataFrame:
    """``columns`` of ``df`` as numbers (``numbers``); columns already numeric are left as they are."""
    for c in columns:
        if c in df and df[c].dtype.kind not in "biuf":
            df[c] = numbers(df[c].to_numpy(), path, c)
    return df


def require_columns(path, available, required):
    missing = [c for c in required if c not in set(available)]
    if missing:
        raise MissingColumnsError(f"{path}: missing required column(s) {missing}; found {sorted(available)[:20]}...")


ALLSTAR_TEXT = ("APOGEE_ID", "TELESCOPE", "FIELD", "FILE", "ASPCAP_ID")  # allStar's text columns; the others are numbers


def read_allstar(path, columns) -> pd.DataFrame:
    """Selected columns of an APOGEE allStar FITS file (HDU 1) as a DataFrame (strings decoded)."""
    from astropy.io import fits

    with reading(path, "an allStar FITS table (HDU 1)"):
        with fits.open(path, memmap=True) as hdul:
            if len(hdul) < 2 or not hasattr(hdul[1], "columns"):
                raise InputFileError(f"{path}: has no table in HDU 1 (an allStar file has its stars there)")
            data = hdul[1].data
            require_columns(path, hdul[1].columns.names, columns)
            out = {}
            for c in columns:
                v = np.asarray(data[c])
                out[c] = np.char.strip(v.astype(str)) if v.dtype.kind in "SU" else v.astype(v.dtype.newbyteorder("="))
    return numeric_columns(pd.DataFrame(out), path, [c for c in columns if c not in ALLSTAR_TEXT])


def read_parquet_table(path, columns) -> pd.DataFrame:
    import pyarrow.parquet as pq

    with reading(path, "a Parquet table"):
        names = pq.read_schema(path).names
        require_columns(path, names, columns)
        return pq.read_table(path, columns=list(columns)).to_pandas()


def suffix_of(path) -> str:
    name = Path(path).name.lower()
    for ext in (".csv.gz", ".ecsv.gz", ".fits.gz", ".csv", ".ecsv", ".fits", ".fit", ".parquet", ".json", ".vot", ".xml"):
        if name.endswith(ext):
            return ext.replace(".gz", "")
    raise InputFileError(f"{path}: unknown table format (expected .csv, .ecsv, .fits, .parquet or the archive's .json)")


def _read_archive_json(path) -> pd.DataFrame:
    """The Gaia archive's JSON output: {"metadata": [{"name": ...}, ...], "data": [[...], ...]}."""
    import json

    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or "metadata" not in doc or "data" not in doc:
        raise InputFileError(f"{path}: not a Gaia archive JSON table (needs 'metadata' and 'data')")
    names = [m["name"] for m in doc["metadata"]]
    df = pd.DataFrame(doc["data"], columns=names)
    for m in doc["metadata"]:
        kind = {"long": "Int64", "int": "Int64", "short": "Int64", "double": "float64", "float": "float64", "boolean": "boolean"}.get(
            m.get("datatype")
        )
        if kind and m.get("arraysize") in (None, "1"):
            df[m["name"]] = df[m["name"]].astype(kind)
    return df


def read_table(path, columns=None) -> pd.DataFrame:
    """A table in any of the formats users download: CSV, ECSV, FITS (HDU 1), Parquet or archive JSON.

    ``columns`` are required: a missing one is an error naming the file and the column.
    Masked or null values become NaN (floats) or <NA> (integers).
    """
    ext = suffix_of(path)
    with reading(path, f"a {ext[1:].upper()} table"):
        df = _read_any_table(path, ext, columns)
    if columns:
        require_columns(path, df.columns, columns)
        df = df[list(columns)]
    if len(df) == 0:
        raise InputFileError(f"{path}: the table is empty (a header and no rows)")
    return df


def _read_any_table(path, ext, columns):
    if ext == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        if columns:
            require_columns(path, names, columns)
        return pq.read_table(path, columns=list(columns) if columns else None).to_pandas()
    if ext == ".json":
        return _read_archive_json(path)
    if ext == ".csv":
        require_whole_text_file(path)
        try:  # only the columns asked for: the archive's bulk gaia_source files have 152
            return pd.read_csv(path, comment="#", usecols=lambda c: columns is None or c in set(columns))
        except pd.errors.EmptyDataError:
            raise InputFileError(f"{path}: the file is empty (no header line, no rows)") from None
    from astropy.table import Table

    t = Table.read(path, format="ascii.ecsv" if ext == ".ecsv" else None)
    if columns:
        require_columns(path, t.colnames, columns)
        t = t[list(columns)]
    return t.to_pandas()


GAIA_TEXT = ("designation", "phot_variable_flag", "libname_gspphot", "datalink_url", "epoch_photometry_url")  # the rest are numbers
# The archive's types of the gaia_source columns the pipeline reads (DOUBLE float64, REAL float32,
# SHORT int16): every format is read back to them, so the same table as CSV, ECSV, FITS, JSON or
# Parquet gives the same numbers (a float32 magnitude read from text as float64 differs in its last bits)
GAIA_DTYPES = {
    **dict.fromkeys(("ra", "dec", "l", "b", "parallax", "ecl_lat"), "float64"),
    **dict.fromkeys(
        (
            "parallax_error",
            "ruwe",
            "phot_g_mean_mag",
            "phot_bp_mean_mag",
            "phot_rp_mean_mag",
            "phot_g_mean_flux_over_error",
            "phot_bp_mean_flux_over_error",
            "phot_rp_mean_flux_over_error",
            "bp_rp",
            "phot_bp_rp_excess_factor",
            "nu_eff_used_in_astrometry",
            "pseudocolour",
        ),
        "float32",
    ),
    "astrometric_params_solved": "int16",
}


def read_gaia_source(path, columns) -> pd.DataFrame:
    """gaia_source columns from CSV, ECSV, FITS, Parquet or archive JSON; source ids must be unique.
    Every column but gaia_source's text ones must hold numbers, whatever dtype the format gave it
    (object, or pandas' str for text): one that does not is an error naming the file, column and row."""
    df = read_table(path, columns)
    numeric_columns(df, path, [c for c in df.columns if df[c].dtype.kind not in "biufc" and c not in GAIA_TEXT])
    if "source_id" in df:
        if df.source_id.isna().any():
            raise InputFileError(
                f"{path}: column source_id has empty values in rows {np.nonzero(df.source_id.isna().to_numpy())[0][:10].tolist()}"
            )
        df["source_id"] = df.source_id.astype(np.int64)
        dup = df.source_id[df.source_id.duplicated()].unique()
        if dup.size:
            raise InputFileError(f"{path}: duplicate source_id values {dup[:10].tolist()} ({dup.size} in all); keep one row per source")
    for c in df.columns:
        if df[c].dtype.name in ("Int64", "Int32", "Int16", "boolean") and c != "source_id":
            df[c] = df[c].astype("float64") if df[c].isna().any() else df[c].astype(df[c].dtype.name.lower().replace("boolean", "bool"))
        target = GAIA_DTYPES.get(c)
        if target and (df[c].dtype.kind in "iu" or (df[c].dtype.kind == "f" and target.startswith("float"))):
            df[c] = df[c].astype(target)
    return df
