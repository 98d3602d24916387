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


def _suffix(path) -> str:
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
    ext = _suffix(path)
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


def xp_partition_paths(directory) -> list[Path]:
    """XP continuous partitions in a folder: Parquet, or the archive's CSV/ECSV (optionally gzipped)."""
    d = Path(directory)
    paths = sorted(p for pattern in ("*.parquet", "*.csv", "*.csv.gz", "*.ecsv", "*.ecsv.gz") for p in d.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"{directory}: no XP continuous partitions (*.parquet, *.csv, *.ecsv)")
    return paths


XP_FIELDS = ("coefficients", "coefficient_errors", "n_relevant_bases")


def read_xp_coefficients(source, bands=("bp", "rp")) -> tuple[np.ndarray, dict]:
    """source_id and, per band, (coefficients, errors, n_relevant_bases) of Gaia XP continuous spectra.

    ``source`` is a file or a folder of partitions, in any archive format: Parquet, CSV/ECSV with
    array columns as "(c0, c1, ...)" strings, or FITS with array columns or with the flat
    ``bp_coeff_0..54`` / ``e_bp_coeff_0..54`` layout. A band missing for a star (null in the
    archive) comes back as a row of NaN with 0 relevant bases.
    """
    paths = xp_partition_paths(source) if Path(source).is_dir() else [Path(source)]
    ids, per_band = [], {b: ([], [], []) for b in bands}
    for path in paths:
        with reading(path, "a Gaia XP continuous table"):
            sid, data = _read_xp_file(path, bands)
        ids.append(sid)
        for b in bands:
            for j in range(3):
                per_band[b][j].append(data[b][j])
    sid = np.concatenate(ids)
    dup = pd.Series(sid)[pd.Series(sid).duplicated()].unique()
    if dup.size:
        raise InputFileError(f"{source}: duplicate XP source_id values {dup[:10].tolist()} ({dup.size} in all)")
    return sid, {b: tuple(np.concatenate(x) for x in per_band[b]) for b in bands}


def _read_xp_file(path, bands):
    ext = _suffix(path)
    if ext == ".parquet":
        import pyarrow.parquet as pq

        cols = ["source_id"] + [f"{b}_{c}" for b in bands for c in XP_FIELDS]
        require_columns(path, pq.read_schema(path).names, cols)
        t = pq.read_table(path, columns=cols)
        out = {}
        for b in bands:
            c = _list_column_to_2d(t[f"{b}_coefficients"], path, f"{b}_coefficients")
            e = _list_column_to_2d(t[f"{b}_coefficient_errors"], path, f"{b}_coefficient_errors")
            n = numbers(t[f"{b}_n_relevant_bases"].to_numpy(zero_copy_only=False), path, f"{b}_n_relevant_bases")
            out[b] = (c, e, np.nan_to_num(n).astype(np.int16))
        sid = _source_ids(t["source_id"].to_numpy(zero_copy_only=False), path)
    elif ext in (".csv", ".ecsv"):
        df = _read_xp_csv_raw(path)
        out = {}
        for b in bands:
            c, e = (parse_archive_arrays(df[f"{b}_{f}"].to_numpy(), 55, path, f"{b}_{f}") for f in XP_CSV_ARRAYS)
            out[b] = (c, e, np.nan_to_num(numbers(df[f"{b}_n_relevant_bases"].to_numpy(), path, f"{b}_n_relevant_bases")).astype(np.int16))
        sid = _source_ids(df.source_id.to_numpy(), path)
    elif ext == ".fits":
        from astropy.table import Table

        t = Table.read(path, hdu=1)
        flat = f"{bands[0]}_coeff_0" in t.colnames
        out = {}
        for b in bands:
            if flat:
                names = [f"{b}_coeff_{k}" for k in range(55)]
                enames = [f"e_{b}_coeff_{k}" for k in range(55)]
                require_columns(path, t.colnames, ["source_id", f"{b}_n_relevant_bases", *names, *enames])
                c = np.stack([_fits_numbers(t[n], path, n) for n in names], axis=1)
                e = np.stack([_fits_numbers(t[n], path, n) for n in enames], axis=1)
            else:
                require_columns(path, t.colnames, ["source_id"] + [f"{b}_{f}" for f in XP_FIELDS])
                c = np.ma.filled(np.asarray(t[f"{b}_coefficients"], float), np.nan)
                e = np.ma.filled(np.asarray(t[f"{b}_coefficient_errors"], float), np.nan)
                if c.ndim != 2 or c.shape[1] != 55:
                    raise InputFileError(f"{path}: column {b}_coefficients has arrays of shape {c.shape[1:]}; expected (55,)")
            n = np.nan_to_num(_fits_numbers(t[f"{b}_n_relevant_bases"], path, f"{b}_n_relevant_bases")).astype(np.int16)
            out[b] = (c, e, n)
        sid = _source_ids(np.asarray(t["source_id"]), path)
    else:
        raise InputFileError(f"{path}: XP continuous spectra must be Parquet, CSV, ECSV or FITS")
    if sid.size == 0:
        raise InputFileError(f"{path}: the XP table is empty")
    # the archive's types, whatever the format: coefficients DOUBLE, their errors REAL (float32), so
    # that an error read from text ("%.9g") is the float32 that Parquet or FITS hold, to the bit
    out = {b: (c.astype(np.float64), e.astype(np.float32).astype(np.float64), n) for b, (c, e, n) in out.items()}
    return np.asarray(sid, np.int64), out


def _source_ids(values, path) -> np.ndarray:
    """source_id as int64: every row a whole number (text, an empty field or NaN is named)."""
    v = np.asarray(values)
    if v.dtype.kind in "iu":
        return v.astype(np.int64)
    if v.dtype.kind in "SUO":  # from text: exact integers, never through float64 (ids have 19 digits)
        text = pd.Series(v, dtype=object).map(lambda x: x.decode() if isinstance(x, bytes) else x).astype(str).str.strip()
        ok = text.str.fullmatch(r"[0-9]+").to_numpy()
        if not ok.all():
            row = int(np.argmax(~ok))
            raise InputFileError(f"{path}: column source_id must hold whole numbers; row {row} holds {text.iloc[row]!r}")
        return text.astype(np.int64).to_numpy()
    f = numbers(v, path, "source_id")
    bad = ~np.isfinite(f) | (f != np.round(f))
    if bad.any():
        raise InputFileError(f"{path}: column source_id must hold whole numbers; row {int(np.argmax(bad))} holds {v[np.argmax(bad)]!r}")
    return v.astype(np.int64)


def _fits_numbers(column, path, name) -> np.ndarray:
    """A FITS table column as float64, masked values NaN (a string column is checked by ``numbers``)."""
    if column.dtype.kind in "biuf":
        return np.ma.filled(np.ma.asarray(column).astype(float), np.nan)
    return numbers(np.asarray(column), path, name)


def _list_column_to_2d(col, path, name, width=55) -> np.ndarray:
    import pyarrow as pa

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    out = np.full((len(col), width), np.nan)
    valid = ~col.is_null().to_numpy(zero_copy_only=False)
    lengths = col.value_lengths().to_numpy(zero_copy_only=False)
    bad = valid & (lengths != width)
    if bad.any():
        raise InputFileError(
            f"{path}: column {name} has arrays of length {sorted(set(lengths[bad].tolist()))[:5]} in rows {np.nonzero(bad)[0][:10].tolist()}; expected {width}"
        )
    flat = numbers(col.flatten().to_numpy(zero_copy_only=False), path, name)
    out[valid] = flat.reshape(-1, width)
    return out


def parse_archive_arrays(texts, width: int, path, name) -> np.ndarray:
    """The archive's array fields ("(c0, c1, ...)" strings; empty = null) as a (rows, width) array
    of floats, NaN rows for nulls; parsed in one pass of NumPy's C parser (bulk files hold millions)."""
    s = pd.Series(texts, dtype=object)
    present = s.notna().to_numpy() & s.astype(str).str.strip().ne("").to_numpy()
    out = np.full((len(s), width), np.nan)
    if not present.any():
        return out
    body = s[present].astype(str).str.strip().str.strip("()[]")
    counts = body.str.count(",").to_numpy() + 1
    if (counts != width).any():
        raise InputFileError(
            f"{path}: column {name} has arrays of length {sorted(set(counts[counts != width].tolist()))[:5]}; expected {width}"
        )
    try:
        flat = np.array(",".join(body.tolist()).replace("\n", " ").split(","), dtype=float)
    except ValueError:  # find the row and the element (only on this path: the fast parse is one pass)
        rows = np.nonzero(present)[0]
        for row, text in zip(rows, body.tolist()):
            for item in text.split(","):
                try:
                    float(item)
                except ValueError:
                    raise InputFileError(
                        f"{path}: column {name} must hold numbers; row {int(row)} holds {item.strip()!r} in its array"
                    ) from None
        raise
    out[present] = flat.reshape(-1, width)
    return out


XP_CSV_ARRAYS = ("coefficients", "coefficient_errors")


def _read_xp_csv_raw(path, arrays=XP_CSV_ARRAYS) -> pd.DataFrame:
    """An XP continuous CSV/ECSV with its array fields as text; of the array fields only ``arrays``
    are read (the correlations are the bulk of a file, and nothing but ``read_xp_archive_csv`` asks for them)."""
    require_whole_text_file(path)
    array_suffixes = ("_coefficients", "_coefficient_errors", "_coefficient_correlations")
    wanted = {f"{b}_{c}" for b in ("bp", "rp") for c in arrays}
    # source_id as text first: 19-digit ids are read exactly, and one that is not a number is named
    df = pd.read_csv(path, comment="#", dtype={"source_id": str}, usecols=lambda c: c in wanted or not c.endswith(array_suffixes))
    required = ["source_id"] + [f"{b}_{c}" for b in ("bp", "rp") for c in ("coefficients", "coefficient_errors", "n_relevant_bases")]
    require_columns(path, df.columns, required)
    df["source_id"] = _source_ids(df.source_id.to_numpy(), path)
    return df


def read_xp_archive_csv(path) -> pd.DataFrame:
    """Gaia archive XP continuous CSV/ECSV: array columns ('(c0, c1, ...)' strings) become numpy arrays.

    A band missing for a star (empty fields) gives None in its array columns and NaN elsewhere.
    """
    df = _read_xp_csv_raw(path, XP_CSV_ARRAYS + ("coefficient_correlations",))
    for col in df.columns:
        if col.endswith(("_coefficients", "_coefficient_errors", "_coefficient_correlations")):
            width = 55 * 54 // 2 if col.endswith("correlations") else 55
            a = parse_archive_arrays(df[col].to_numpy(), width, path, col)
            df[col] = [None if np.isnan(row).all() else row for row in a]
    return df
