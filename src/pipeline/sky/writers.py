"""Writers of the survey files in the formats users download.

- APOGEE DR17 ``allStar`` (FITS binary table, HDU 1, DR17 column names and dtypes)
- Gaia DR3 ``gaia_source`` (Parquet, archive column names)
- Gaia DR3 ``xp_continuous`` (Parquet partitions, or the archive's CSV layout)
- a DistMass-like value-added catalogue (FITS)
"""

from __future__ import annotations

import csv
import os
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
    (source_id // 2^47) of their rows, as in the Gaia CDN's bulk download; ``fmt`` is
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
        hpx = sub["source_id"] // 2**47
        path = directory / f"XpContinuousMeanSpectrum_{hpx.min():06d}-{hpx.max():06d}.{fmt}"
        if fmt == "csv":
            write_xp_archive_csv(path, sub)
        else:
            pq.write_table(xp_arrow_table(sub), path, compression="zstd")
        paths.append(path)
    return paths


def _format_float(x: float, single: bool) -> str:
    return repr(float(np.float32(x))) if single else repr(float(x))


def _format_array(values, single: bool) -> str:
    if values is None or not np.isfinite(values).all():
        return ""
    return "(" + ", ".join(_format_float(v, single) for v in values) + ")"


def write_xp_archive_csv(path, xp: dict):
    """Write XP continuous rows in the Gaia archive's CSV layout.

    Array columns are quoted, parenthesised, comma-separated strings ("(c0, c1, ...)"); a missing
    band leaves all its fields empty, as in the archive's own files.
    """
    n = len(xp["source_id"])
    with open(path, "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(XP_ARCHIVE_COLUMNS)
        for i in range(n):
            row = []
            for name in XP_ARCHIVE_COLUMNS:
                v = xp[name][i]
                band = name[:2]
                band_missing = name[:3] in ("bp_", "rp_") and not np.isfinite(xp[f"{band}_coefficients"][i]).all()
                if band_missing:
                    row.append("")
                elif name.endswith(XP_ARRAY_SUFFIXES):
                    row.append(_format_array(v, single=not name.endswith("_coefficients")))
                elif isinstance(v, (float, np.floating)):
                    row.append(_format_float(v, single=True))
                else:
                    row.append(str(int(v)))
            w.writerow(row)


def atomic_directory(final: Path) -> Path:
    """A sibling temporary directory to build into; see ``commit_directory``."""
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_directory(tmp: Path, final: Path):
    """Move every file of ``tmp`` into ``final`` (outputs appear whole or not at all), then remove tmp."""
    import shutil

    final.mkdir(parents=True, exist_ok=True)
    for item in tmp.iterdir():
        dest = final / item.name
        if dest.exists():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        os.replace(item, dest)
    shutil.rmtree(tmp)
