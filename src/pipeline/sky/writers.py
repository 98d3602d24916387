"""Writers of the survey files in the formats users download.

- APOGEE DR17 ``allStar`` (FITS binary table, HDU 1, DR17 column names and dtypes)
- Gaia DR3 ``gaia_source`` (Parquet, archive column names)
- Gaia DR3 ``xp_continuous`` (Parquet partitions, or the archive's CSV layout)
- a DistMass-like value-added catalogue (FITS)
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

XP_ARCHIVE_COLUMNS = (
    "source_id",
    "solution_id",
    *[
        f"{b}_{c}"
        for b in ("bp", "rp")
        for c in (
            "basis_function_id",
            "degrees_of_freedom",
            "n_parameters",
            "n_measurements",
            "n_rejected_measurements",
            "standard_deviation",
            "chi_squared",
            "coefficients",
            "coefficient_errors",
            "coefficient_correlations",
            "n_relevant_bases",
            "relative_shrinking",
        )
    ],
)
XP_ARRAY_SUFFIXES = ("coefficients", "coefficient_errors", "coefficient_correlations")
N_CORRELATIONS = 55 * 54 // 2


def write_fits_table(path, columns: dict, hdu_name: str | None = None, header: dict | None = None):
    """Write a FITS binary table in HDU 1 (deterministic: no DATE card)."""
    from astropy.io import fits
    from astropy.table import Table

    t = Table(columns)
    hdu = fits.BinTableHDU(t, name=hdu_name)
    for k, v in (header or {}).items():
        hdu.header[k] = v
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def write_parquet(path, columns: dict, metadata: dict | None = None):
    table = pa.table(columns)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k: str(v) for k, v in metadata.items()}})
    pq.write_table(table, path, compression="zstd")


def xp_arrow_table(xp: dict) -> pa.Table:
    """Arrow table of XP continuous rows: ``xp`` maps archive column names to arrays.

    Array columns are (rows x n) numpy arrays; a row whose band is missing has NaN there and is
    written as null, as the archive does.
    """
    cols = {}
    for name in XP_ARCHIVE_COLUMNS:
        v = xp[name]
        if name.endswith(XP_ARRAY_SUFFIXES):
            v = np.asarray(v)
            missing = ~np.isfinite(v).all(axis=1)
            dtype = pa.float64() if name.endswith("_coefficients") else pa.float32()
            flat = pa.array(v.astype(np.float64 if dtype == pa.float64() else np.float32).ravel(), type=dtype)
            offsets = pa.array(np.arange(0, v.size + 1, v.shape[1], dtype=np.int32))
            arr = pa.ListArray.from_arrays(offsets, flat, mask=pa.array(missing))
            cols[name] = arr
        else:
            cols[name] = pa.array(v)
    return pa.table(cols)


def write_xp_partitions(directory, xp: dict, n_partitions: int, fmt: str = "parquet") -> list[Path]:
    """Write XP rows sorted by source_id into partitions named like the archive's bulk files.

    Files are ``XpContinuousMeanSpectrum_<first>-<last>.<fmt>`` with the level-8 HEALPix range
    (source_id // 2^43) of their rows, as in the Gaia CDN's bulk download; ``fmt`` is
    ``parquet`` or ``csv`` (the archive's CSV layout, for small skies).
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"XP format must be 'parquet' or 'csv', not {fmt!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    order = np.argsort(xp["source_id"])
    parts = np.array_split(order, max(1, n_partitions))
    paths = []
    for idx in parts:
        if idx.size == 0:
            continue
        sub = {k: np.asarray(v)[idx] for k, v in xp.items()}
        hpx = sub["source_id"] // 2**43
        path = directory / f"XpContinuousMeanSpectrum_{hpx.min():06d}-{hpx.max():06d}.{fmt}"
        if fmt == "csv":
            write_xp_archive_csv(path, sub)
        else:
            pq.write_table(xp_arrow_table(sub), path, compression="zstd")
        paths.append(path)
    return paths


def _format_column(values, single: bool) -> list[str]:
    """Text of one column, each row exact on reading back: 9 significant digits for float32, 17
    for float64, integers as they are; array rows (rows x n) as "(c0, c1, ...)", a row with a
    non-finite value as an empty field (the archive's null)."""
    v = np.asarray(values)
    fmt = "%.9g" if single else "%.17g"
    if v.ndim == 2:
        row_fmt = "(" + ", ".join([fmt] * v.shape[1]) + ")"
        ok = np.isfinite(v).all(axis=1)
        return [row_fmt % tuple(r) if good else "" for r, good in zip(v.tolist(), ok)]
    if v.dtype.kind in "biu":
        return [str(x) for x in v.tolist()]
    text = [fmt % x if np.isfinite(x) else "" for x in v.tolist()]
    return [t if not t or any(c in t for c in ".en") else t + ".0" for t in text]  # 1.0, not 1: a float column reads back as floats


def write_xp_archive_csv(path, xp: dict, header: bool = True):
    """Write XP continuous rows in the Gaia archive's CSV layout, to a path or an open text file
    (``header=False``: rows only, to append to a file begun with its header).

    Array columns are quoted, parenthesised, comma-separated strings ("(c0, c1, ...)"); a missing
    band leaves all its fields empty, as in the archive's own files.
    """
    if not hasattr(path, "write"):
        with open(path, "w", newline="") as f:
            return write_xp_archive_csv(f, xp, header)
    w = csv.writer(path, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    if header:
        w.writerow(XP_ARCHIVE_COLUMNS)
    missing = {b: ~np.isfinite(np.asarray(xp[f"{b}_coefficients"])).all(axis=1) for b in ("bp", "rp")}
    columns = []
    for name in XP_ARCHIVE_COLUMNS:
        # the archive writes coefficients as doubles, their errors and correlations as floats
        single = name.endswith(("_errors", "_correlations")) or (
            not name.endswith("_coefficients") and np.asarray(xp[name]).dtype != np.float64
        )
        text = _format_column(xp[name], single=single)
        if name[:3] in ("bp_", "rp_"):
            text = ["" if gone else t for t, gone in zip(text, missing[name[:2]])]
        columns.append(text)
    w.writerows(zip(*columns))
