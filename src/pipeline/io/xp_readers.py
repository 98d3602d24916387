"""Readers of Gaia's XP continuous spectra in every format the archive ships (Parquet, CSV/ECSV with
the archive's array text, FITS), one file or a folder of partitions, with errors that name the file
and the column (the shared checks: io/readers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .readers import InputFileError, numbers, reading, require_columns, require_whole_text_file, suffix_of


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
    ext = suffix_of(path)
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
    arraysuffix_ofes = ("_coefficients", "_coefficient_errors", "_coefficient_correlations")
    wanted = {f"{b}_{c}" for b in ("bp", "rp") for c in arrays}
    # source_id as text first: 19-digit ids are read exactly, and one that is not a number is named
    df = pd.read_csv(path, comment="#", dtype={"source_id": str}, usecols=lambda c: c in wanted or not c.endswith(arraysuffix_ofes))
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
