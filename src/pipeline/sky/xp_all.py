"""The mock's all-sky XP population: Gaia sources with XP spectra beyond APOGEE's stars.

What the model is for: answers for every source with an XP spectrum (220 million in DR3), not
only for the ~400k APOGEE stars it learnt from. This population is drawn over the whole sky
(``population.all_sky_footprint``), mostly dwarfs as a magnitude-limited sample is, through the
same dust map, SEDs, XP projection, Gaia photometry and astrometry as the sky's APOGEE stars
(``build``'s steps), and written in the layout of the Gaia archive's bulk download:

- ``gaia_source/GaiaSource_<lo>-<hi>.csv.gz``                 (or ``.parquet``)
- ``xp_continuous/XpContinuousMeanSpectrum_<lo>-<hi>.csv.gz``  (or ``.parquet``)
- ``truth.parquet``   the true values of every source (read only by the evaluation)
- ``manifest.json``   configuration and counts, written last

``<lo>-<hi>`` is the range of level-8 HEALPix indices (``source_id // 2**43``) a file holds, as
in the archive's file names; both tables share the ranges, so a partition's two files join on
source_id alone. Sources are made chunk by chunk and appended to their partitions, so memory is
bounded by a chunk whatever ``n_sources``. The coefficient correlations are left null (nothing
reads them; at millions of sources they would be most of the bytes).
"""

from __future__ import annotations

import gzip
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog.combined19 import Combined19Map
from ..gaia.bulk import equal_ranges, healpix8, range_name
from ..io.atomic import atomic_path, write_json
from ..settings import from_dict
from .build import _jsonable, distances_and_extinction, gaia_astrometry, gaia_photometry, stellar_population, xp_spectra
from .population import XP_CLASS_FRACTIONS, XP_H_LIMITS, all_sky_footprint
from .tables import gaia_source_columns, xp_continuous_table
from .writers import write_xp_archive_csv, xp_arrow_table

log = logging.getLogger(__name__)

FORMATS = ("csv.gz", "parquet")


@dataclass
class XpAllConfig:
    """``sky.xp_all``: size, partitions and format of the all-sky XP population."""

    enabled: bool = True
    n_sources: int = 20_000  # sources with XP spectra
    partitions: int = 4  # files per table, by equal ranges of level-8 HEALPix index
    format: str = "csv.gz"  # csv.gz: the archive's bulk CSV; parquet: for millions of sources
    seed: int = 23
    chunk: int = 50_000  # sources made at a time (memory)

    @classmethod
    def from_dict(cls, d):
        cfg = from_dict(cls, d, "sky.xp_all")
        if cfg.format not in FORMATS:
            raise ValueError(f"sky.xp_all.format: {cfg.format!r} is not one of {list(FORMATS)}")
        if cfg.n_sources < 1 or cfg.partitions < 1 or cfg.chunk < 1:
            raise ValueError("sky.xp_all: n_sources, partitions and chunk must be at least 1")
        return cfg


def partition_names(n_partitions: int) -> list[str]:
    """The ranges of the population's files (the archive's naming, ``gaia.bulk``)."""
    return [range_name(lo, hi) for lo, hi in equal_ranges(n_partitions)]


def file_names(partition: str, fmt: str) -> dict[str, str]:
    """The two files of a partition, relative to the population's folder."""
    return {
        "gaia_source": f"gaia_source/GaiaSource_{partition}.{fmt}",
        "xp_continuous": f"xp_continuous/XpContinuousMeanSpectrum_{partition}.{fmt}",
    }


class _PartitionFiles:
    """Appends rows to each partition's two files (gzip members, or Parquet row groups)."""

    def __init__(self, folder: Path, n_partitions: int, fmt: str):
        self.folder, self.fmt = folder, fmt
        self.ranges = equal_ranges(n_partitions)
        self.names = [range_name(lo, hi) for lo, hi in self.ranges]
        self.upper = np.array([hi for _, hi in self.ranges])
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.started: set[str] = set()
        for sub in ("gaia_source", "xp_continuous"):
            (folder / sub).mkdir(parents=True, exist_ok=True)

    def partition_of(self, source_id) -> np.ndarray:
        return np.searchsorted(self.upper, healpix8(source_id))

    def append(self, gaia: dict, xp: dict):
        for table, cols in (("gaia_source", gaia), ("xp_continuous", xp)):
            part = self.partition_of(cols["source_id"])
            for i in np.unique(part):
                sel = part == i
                self._write(table, self.names[i], {k: np.asarray(v)[sel] for k, v in cols.items()})

    def _write(self, table: str, name: str, cols: dict):
        path = self.folder / file_names(name, self.fmt)[table]
        key = str(path)
        if self.fmt == "parquet":
            t = xp_arrow_table(cols) if table == "xp_continuous" else pa.table(cols)
            if key not in self.writers:
                self.writers[key] = pq.ParquetWriter(path, t.schema, compression="zstd")
            self.writers[key].write_table(t)
            return
        first = key not in self.started
        self.started.add(key)
        with gzip.open(path, "at" if not first else "wt", compresslevel=3, newline="") as f:
            if table == "xp_continuous":
                write_xp_archive_csv(f, cols, header=first)
            else:
                if first:
                    f.write("# mock Gaia DR3 gaia_source, the archive's bulk CSV layout\n")
                pd.DataFrame(cols).to_csv(f, header=first, index=False, na_rep="null", float_format="%.9g")

    def close(self):
        for w in self.writers.values():
            w.close()


def _truth(pop, los, xp_true, astro, rows) -> dict:
    return {
        "source_id": astro["source_id"][rows],
        "l": pop["l"][rows],
        "b": pop["b"][rows],
        "distance_kpc": los["distance_kpc"][rows],
        "parallax_true_mas": astro["parallax_true"][rows],
        "teff": pop["teff"][rows],
        "logg": pop["logg"][rows],
        "m_h": pop["m_h"][rows],
        "mass": pop["mass"][rows],
        "age": pop["age"][rows],
        "evol_class": pop["evol_class"][rows],
        "component": pop["component"][rows],
        "ebv_c19": los["ebv_c19"][rows],
        "ebv_true": los["ebv_true"][rows],
        "g_true": xp_true["g_true"][rows],
        "bp_true": xp_true["bp_true"][rows],
        "rp_true": xp_true["rp_true"][rows],
    }


def _chunk(n_draw: int, dmap: Combined19Map, rng: dict):
    """One chunk of sources through the sky's steps: (pop, los, xp_true, phot, astro)."""
    pop = stellar_population(n_draw, rng["pop"], positions=all_sky_footprint, class_fractions=XP_CLASS_FRACTIONS)
    los = distances_and_extinction(pop, dmap, rng["dist"], h_limits=XP_H_LIMITS)
    xp_true = xp_spectra(pop, los, 10_000, rng["xp"])
    phot = gaia_photometry(xp_true, pop, rng["phot"])
    astro = gaia_astrometry(pop, phot, los, rng["astro"])
    return pop, los, xp_true, phot, astro


def build_xp_all(cfg: XpAllConfig, dust_file, out_dir) -> dict:
    """Write the all-sky XP population into ``out_dir`` (whole or not at all); returns the manifest."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    dmap = Combined19Map.from_file(dust_file)
    seeds = np.random.SeedSequence(cfg.seed)
    made, chunks, truth = 0, 0, []
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        files = _PartitionFiles(tmp, cfg.partitions, cfg.format)
        try:
            while made < cfg.n_sources:
                names = ("pop", "dist", "xp", "phot", "astro", "archive")  # each step its own stream, per chunk
                rng = {n: np.random.default_rng(s) for n, s in zip(names, seeds.spawn(1)[0].spawn(len(names)))}
                need = cfg.n_sources - made
                pop, los, xp_true, phot, astro = _chunk(int(min(cfg.chunk, need) * 1.5) + 16, dmap, rng)
                rows = np.flatnonzero(astro["has_xp"])[:need]
                astro["has_xp"] = np.isin(np.arange(astro["has_xp"].size), rows)
                files.append(
                    gaia_source_columns(pop, phot, astro, rows), xp_continuous_table(astro, xp_true, rng["archive"], correlations=False)
                )
                truth.append(pd.DataFrame(_truth(pop, los, xp_true, astro, rows)))
                made += rows.size
                chunks += 1
                rate = made / max(time.perf_counter() - t0, 1e-9)
                log.info(
                    "xp_all: %d of %d sources (%.0f/s, ETA %.0f s)", made, cfg.n_sources, rate, (cfg.n_sources - made) / max(rate, 1e-9)
                )
        finally:
            files.close()
        truth = pd.concat(truth, ignore_index=True)
        dup = truth.source_id.duplicated()
        if dup.any():  # two sources with one id (a 31-bit draw repeated in one level-12 pixel): vanishingly rare
            raise RuntimeError(f"xp_all: {int(dup.sum())} duplicate source ids; change sky.xp_all.seed")
        pq.write_table(pa.Table.from_pandas(truth, preserve_index=False), tmp / "truth.parquet", compression="zstd")
        part = files.partition_of(truth.source_id.to_numpy())
        empty = [name for i, name in enumerate(files.names) if not (part == i).any()]
        if empty:  # every partition is a job's input: each must have its files
            raise ValueError(f"sky.xp_all: no source fell in partition(s) {empty}; raise n_sources or lower partitions")
        counts = {
            "sources": int(len(truth)),
            "chunks": chunks,
            "per_partition": {name: int((part == i).sum()) for i, name in enumerate(files.names)},
            "giants": int(truth.logg.lt(3.5).sum()),
            "metal_poor": int(truth.m_h.lt(-1.0).sum()),
        }
        manifest = {"config": _jsonable(asdict(cfg)), "counts": counts, "seconds": round(time.perf_counter() - t0, 1)}
        write_json(manifest, tmp / "manifest.json")
    log.info("xp_all: %d sources in %d partitions, %.1f s", counts["sources"], cfg.partitions, time.perf_counter() - t0)
    return manifest
