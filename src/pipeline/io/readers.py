"""Readers for the survey files, with errors that name the file and the missing columns."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class MissingColumnsError(ValueError):
    """A required column is absent from an input file."""


def require_columns(path, available, required):
    missing = [c for c in required if c not in set(available)]
    if missing:
        raise MissingColumnsError(f"{path}: missing required column(s) {missing}; found {sorted(available)[:20]}...")


def read_allstar(path, columns) -> pd.DataFrame:
    """Selected columns of an APOGEE allStar FITS file (HDU 1) as a DataFrame (strings decoded)."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        data = hdul[1].data
        require_columns(path, data.columns.names, columns)
        out = {}
        for c in columns:
            v = np.asarray(data[c])
            out[c] = np.char.strip(v.astype(str)) if v.dtype.kind in "SU" else v.astype(v.dtype.newbyteorder("="))
    return pd.DataFrame(out)


def read_parquet_table(path, columns) -> pd.DataFrame:
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    require_columns(path, names, columns)
    return pq.read_table(path, columns=list(columns)).to_pandas()


def xp_partition_paths(directory) -> list[Path]:
    """XP continuous partitions in a folder: Parquet, or the archive's CSV/ECSV (optionally gzipped)."""
    d = Path(directory)
    paths = sorted(p for pattern in ("*.parquet", "*.csv", "*.csv.gz", "*.ecsv", "*.ecsv.gz") for p in d.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"{directory}: no XP continuous partitions (*.parquet, *.csv, *.ecsv)")
    return paths


def read_xp_coefficients(directory, bands=("bp", "rp")) -> tuple[np.ndarray, dict]:
    """source_id and, per band, (coefficients, errors, n_relevant_bases) from XP Parquet partitions.

    A band missing for a star (null in the archive) comes back as rows of NaN.
    """
    import pyarrow.parquet as pq

    ids, per_band = [], {b: ([], [], []) for b in bands}
    for path in xp_partition_paths(directory):
        if path.suffix != ".parquet":
            df = read_xp_archive_csv(path)
            ids.append(df.source_id.to_numpy())
            for b in bands:
                for j, c in enumerate(("coefficients", "coefficient_errors")):
                    per_band[b][j].append(np.stack([np.full(55, np.nan) if v is None else v for v in df[f"{b}_{c}"]]))
                per_band[b][2].append(df[f"{b}_n_relevant_bases"].fillna(0).to_numpy().astype(np.int16))
            continue
        cols = ["source_id"] + [f"{b}_{c}" for b in bands for c in ("coefficients", "coefficient_errors", "n_relevant_bases")]
        require_columns(path, pq.read_schema(path).names, cols)
        t = pq.read_table(path, columns=cols)
        ids.append(t["source_id"].to_numpy())
        for b in bands:
            for j, c in enumerate(("coefficients", "coefficient_errors")):
                per_band[b][j].append(_list_column_to_2d(t[f"{b}_{c}"], path, f"{b}_{c}"))
            per_band[b][2].append(t[f"{b}_n_relevant_bases"].to_numpy(zero_copy_only=False))
    out = {b: tuple(np.concatenate(x) for x in per_band[b]) for b in bands}
    return np.concatenate(ids), out


def _list_column_to_2d(col, path, name, width=55) -> np.ndarray:
    import pyarrow as pa

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    out = np.full((len(col), width), np.nan)
    valid = ~col.is_null().to_numpy(zero_copy_only=False)
    lengths = col.value_lengths().to_numpy(zero_copy_only=False)
    bad = valid & (lengths != width)
    if bad.any():
        raise ValueError(f"{path}: column {name} has arrays of length {sorted(set(lengths[bad].tolist()))[:5]} in rows {np.nonzero(bad)[0][:10].tolist()}; expected {width}")
    flat = col.flatten().to_numpy(zero_copy_only=False)
    out[valid] = flat.reshape(-1, width)
    return out


def _parse_archive_array(text) -> np.ndarray | None:
    if not isinstance(text, str) or not text.strip():
        return None
    body = text.strip().strip("()[]").replace("\n", " ")
    return np.array([float(x) for x in body.replace(",", " ").split()], dtype=float)


def read_xp_archive_csv(path) -> pd.DataFrame:
    """Gaia archive XP continuous CSV/ECSV: array columns ('(c0, c1, ...)' strings) become numpy arrays.

    A band missing for a star (empty fields) gives None in its array columns and NaN elsewhere.
    """
    df = pd.read_csv(path, comment="#", dtype={"source_id": "int64"})
    required = ["source_id"] + [f"{b}_{c}" for b in ("bp", "rp") for c in ("coefficients", "coefficient_errors", "n_relevant_bases")]
    require_columns(path, df.columns, required)
    for col in df.columns:
        if col.endswith(("_coefficients", "_coefficient_errors", "_coefficient_correlations")):
            df[col] = [_parse_archive_array(v) for v in df[col]]
            lengths = {len(v) for v in df[col] if v is not None}
            expected = 55 * 54 // 2 if col.endswith("correlations") else 55
            if lengths - {expected}:
                raise ValueError(f"{path}: column {col} has arrays of length {sorted(lengths)}; expected {expected}")
    return df
