"""The Gaia archive's bulk files: one file per range of source_id, named by its HEALPix range.

DR3's bulk download (``gaia_source/GaiaSource_000000-003111.csv.gz``,
``xp_continuous_mean_spectrum/XpContinuousMeanSpectrum_000000-003111.csv.gz``) splits every
table by ranges of the level-8 HEALPix index, ``source_id // 2**43`` (source_id // 2^35 is the
level-12 index; each level down divides by 4). The tables share their ranges, so the files of a
range join on source_id alone; ``overlapping`` also serves a partitioning of one's own.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..io.readers import InputFileError

N_HEALPIX8 = 12 * 4**8  # level-8 pixels: source_id // 2^43 lies in [0, 786432)
SOURCE_ID_HEALPIX8_FACTOR = 2**43  # 2^35 (level 12) x 4^4
RANGE = re.compile(r"(\d{6})-(\d{6})")


def healpix8(source_id) -> np.ndarray:
    """The level-8 NESTED HEALPix index a Gaia source_id encodes."""
    return np.asarray(source_id, np.int64) // SOURCE_ID_HEALPIX8_FACTOR


def range_name(lo: int, hi: int) -> str:
    """A range as the archive writes it in file names: ``000000-003111`` (inclusive)."""
    return f"{lo:06d}-{hi:06d}"


def equal_ranges(n: int) -> list[tuple[int, int]]:
    """``n`` inclusive ranges of level-8 index of equal size, covering the sky."""
    edges = np.linspace(0, N_HEALPIX8, n + 1).round().astype(np.int64)
    return [(int(edges[i]), int(edges[i + 1] - 1)) for i in range(n)]


def file_range(path) -> tuple[int, int]:
    """The range in a bulk file's name (``..._000000-003111.csv.gz``)."""
    m = RANGE.search(Path(path).name)
    if not m:
        raise InputFileError(f"{path}: no HEALPix range (NNNNNN-NNNNNN) in the file name, as the archive's bulk files have")
    return int(m.group(1)), int(m.group(2))


def bulk_files(folder) -> dict[str, Path]:
    """{range name: file} of a folder of bulk files of one table."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of the archive's bulk files")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and RANGE.search(p.name))
    if not files:
        raise FileNotFoundError(f"{folder}: no bulk files named like the archive's (<Table>_NNNNNN-NNNNNN.csv.gz or .parquet)")
    return {RANGE.search(p.name).group(0): p for p in files}


def overlapping(files: dict[str, Path], lo: int, hi: int) -> list[Path]:
    """The files whose ranges overlap [lo, hi]."""
    return [p for p in files.values() if file_range(p)[0] <= hi and file_range(p)[1] >= lo]


def paired_partitions(xp_folder, gaia_source_folder) -> dict[str, dict]:
    """The partitions of a folder of XP bulk files with their gaia_source rows:
    {range: {"xp_continuous": file, "gaia_source": [the gaia_source files whose ranges overlap it]}}.
    Raises FileNotFoundError naming the folder that holds no bulk file."""
    xp, gaia = bulk_files(xp_folder), bulk_files(gaia_source_folder)
    return {n: {"xp_continuous": str(p), "gaia_source": [str(g) for g in overlapping(gaia, *file_range(p))]} for n, p in xp.items()}
