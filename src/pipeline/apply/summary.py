"""The summary of catalog_all: counts, rates and sky maps of every partition's answers.

Partitions are read one at a time, a few columns each, and folded into counts and histograms
(HEALPix sums per pixel from the source_id, 2D histograms), so memory does not grow with the
number of sources: the same code summarises 20,000 mock sources or 220 million.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..gaia.bulk import SOURCE_ID_HEALPIX8_FACTOR

log = logging.getLogger(__name__)

MAP_LEVEL = 5  # HEALPix level of the sky maps (nside 32, 12,288 pixels of 3.4 deg^2)
KIEL_TEFF = np.linspace(3000, 9000, 121)
KIEL_LOGG = np.linspace(-0.5, 5.5, 121)
SIGMA_BINS = {"teff": np.geomspace(5, 3000, 80), "logg": np.geomspace(0.005, 3, 80), "m_h": np.geomspace(0.005, 3, 80)}
COLUMNS = ["source_id", "teff", "teff_err", "logg", "logg_err", "m_h", "m_h_err", "logebv", "xp_ok", "parallax_usable", "ood", "ood_flags"]


def healpix_of(source_id, level: int) -> np.ndarray:
    """The NESTED HEALPix index at ``level`` (<= 8) a source_id encodes."""
    return (np.asarray(source_id, np.int64) // SOURCE_ID_HEALPIX8_FACTOR) // 4 ** (8 - level)


class Accumulator:
    """Counts, per-pixel sums and histograms folded over partitions."""

    def __init__(self):
        npix = 12 * 4**MAP_LEVEL
        self.counts = {"sources": 0, "xp_ok": 0, "parallax_usable": 0, "answered": 0, "ood": 0}
        self.ood_bits: dict[int, int] = {}
        self.pix_n = np.zeros(npix)
        self.pix = {"m_h": np.zeros(npix), "ebv": np.zeros(npix)}
        self.kiel = np.zeros((KIEL_TEFF.size - 1, KIEL_LOGG.size - 1))
        self.sigma = {t: np.zeros(b.size - 1) for t, b in SIGMA_BINS.items()}
        self.partitions = 0

    def add(self, df: pd.DataFrame):
        self.partitions += 1
        answered = df.teff.notna().to_numpy()
        self.counts["sources"] += len(df)
        self.counts["xp_ok"] += int(df.xp_ok.sum())
        self.counts["parallax_usable"] += int(df.parallax_usable.sum())
        self.counts["answered"] += int(answered.sum())
        self.counts["ood"] += int(df.ood.sum())
        flags = df.ood_flags.to_numpy(np.int64)
        for bit in (1, 2, 4, 8, 16):
            self.ood_bits[bit] = self.ood_bits.get(bit, 0) + int(((flags & bit) != 0).sum())
        good = answered & ~df.ood.to_numpy(bool)
        pix = healpix_of(df.source_id.to_numpy()[good], MAP_LEVEL)
        np.add.at(self.pix_n, pix, 1)
        np.add.at(self.pix["m_h"], pix, df.m_h.to_numpy()[good])
        np.add.at(self.pix["ebv"], pix, np.exp(df.logebv.to_numpy()[good]))
        self.kiel += np.histogram2d(df.teff.to_numpy()[good], df.logg.to_numpy()[good], [KIEL_TEFF, KIEL_LOGG])[0]
        for t, bins in SIGMA_BINS.items():
            self.sigma[t] += np.histogram(df[f"{t}_err"].to_numpy()[good], bins)[0]

    def summary(self) -> dict:
        n = max(self.counts["sources"], 1)
        from .catalogue import OOD_BITS

        return {
            "partitions": self.partitions,
            **self.counts,
            "rates": {k: v / n for k, v in self.counts.items() if k != "sources"},
            "ood_reasons": {OOD_BITS[b]: c for b, c in sorted(self.ood_bits.items())},
            "median_sigma": {t: _histogram_median(h, SIGMA_BINS[t]) for t, h in self.sigma.items()},
            "sky_map_level": MAP_LEVEL,
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        """The binned tables the summary's figures draw: pixels with answers and their means, the
        Kiel histogram's bins, and the sigma histograms."""
        seen = np.flatnonzero(self.pix_n > 0)
        sky = pd.DataFrame(
            {
                "pixel": seen,
                "level": MAP_LEVEL,
                "n": self.pix_n[seen],
                "m_h": self.pix["m_h"][seen] / self.pix_n[seen],
                "ebv": self.pix["ebv"][seen] / self.pix_n[seen],
            }
        )
        ti, li = np.meshgrid(np.arange(KIEL_TEFF.size - 1), np.arange(KIEL_LOGG.size - 1), indexing="ij")
        kiel = pd.DataFrame(
            {
                "teff_lo": KIEL_TEFF[ti.ravel()],
                "teff_hi": KIEL_TEFF[ti.ravel() + 1],
                "logg_lo": KIEL_LOGG[li.ravel()],
                "logg_hi": KIEL_LOGG[li.ravel() + 1],
                "count": self.kiel.ravel(),
            }
        )
        sigma = pd.concat(
            [pd.DataFrame({"label": t, "lo": SIGMA_BINS[t][:-1], "hi": SIGMA_BINS[t][1:], "count": h}) for t, h in self.sigma.items()],
            ignore_index=True,
        )
        return {"sky": sky, "kiel": kiel, "sigma": sigma}


def _histogram_median(counts, edges):
    if counts.sum() == 0:
        return float("nan")
    c = np.cumsum(counts) / counts.sum()
    i = int(np.searchsorted(c, 0.5))
    return float(np.sqrt(edges[i] * edges[i + 1]))


def summarise(parts, summary_path, tables_path) -> dict:
    """Fold every partition's table into summary.json and the binned tables the figures draw
    (``tables_path``: sky means per pixel, the Kiel histogram, the sigma histograms); one
    partition in memory at a time."""
    from ..io.atomic import write_json
    from ..io.tables import write_tables

    acc = Accumulator()
    for p in parts:
        acc.add(pd.read_parquet(p, columns=COLUMNS))
    summary = acc.summary()
    log.info(
        "catalog_all: %d sources in %d partitions; %.1f%% answered, %.1f%% flagged out of distribution",
        summary["sources"],
        summary["partitions"],
        100 * summary["rates"]["answered"],
        100 * summary["rates"]["ood"],
    )
    write_tables(tables_path, acc.tables())
    write_json(summary, summary_path)
    return summary
