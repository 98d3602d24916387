"""The summary of catalog_all: counts, rates and sky maps of every partition's answers.

Partitions are read one at a time, a few columns each, and folded into counts and histograms
(HEALPix sums per pixel from the source_id, 2D histograms), so memory does not grow with the
number of sources: the same code summarises 20,000 mock sources or 220 million.
"""

from __future__ import annotations

import logging
from pathlib import Path

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


def _histogram_median(counts, edges):
    if counts.sum() == 0:
        return float("nan")
    c = np.cumsum(counts) / counts.sum()
    i = int(np.searchsorted(c, 0.5))
    return float(np.sqrt(edges[i] * edges[i + 1]))


def _mollweide(plt, values, title, label, cmap="viridis"):
    import healpy

    nside = 2**MAP_LEVEL
    theta, phi = healpy.pix2ang(nside, np.arange(values.size), nest=True)
    ra = np.degrees(phi)  # the source_id encodes an equatorial (ICRS) HEALPix index
    dec = 90.0 - np.degrees(theta)
    ok = np.isfinite(values)
    fig = plt.figure(figsize=(8, 4.4))
    ax = fig.add_subplot(111, projection="mollweide")
    x = np.radians(np.where(ra > 180, ra - 360, ra))
    if ok.any():
        lo, hi = np.nanpercentile(values[ok], [2, 98])
        sc = ax.scatter(-x[ok], np.radians(dec[ok]), c=values[ok], s=6, marker="s", cmap=cmap, vmin=lo, vmax=hi, rasterized=True)
        fig.colorbar(sc, ax=ax, orientation="horizontal", pad=0.06, fraction=0.05, label=label)
    ax.set_xticklabels([])
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return fig


def figures(acc: Accumulator) -> dict:
    """The summary's figures by name: sky maps of [M/H] and E(B-V), the Kiel diagram, sigma densities."""
    from ..evaluate.figures.common import LABEL, _plt

    plt = _plt()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = {k: np.where(acc.pix_n > 0, v / acc.pix_n, np.nan) for k, v in acc.pix.items()}
        log_ebv = np.log10(mean["ebv"])
    out = {
        "sky_m_h": _mollweide(plt, mean["m_h"], "Mean predicted [M/H] (equatorial, HEALPix level 5)", "[M/H] [dex]", "RdYlBu_r"),
        "sky_ebv": _mollweide(plt, log_ebv, "Mean predicted E(B-V) (equatorial)", r"$\log_{10} E(B-V)$", "magma_r"),
    }
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    with np.errstate(divide="ignore"):
        im = ax.pcolormesh(KIEL_TEFF, KIEL_LOGG, np.log10(np.where(acc.kiel > 0, acc.kiel, np.nan)).T, cmap="viridis", rasterized=True)
    fig.colorbar(im, ax=ax, label=r"$\log_{10}$ sources per bin")
    ax.set(xlabel=LABEL["teff"], ylabel=LABEL["logg"], title="Predicted Kiel diagram (in-distribution sources)")
    ax.invert_xaxis()
    ax.invert_yaxis()
    out["kiel"] = fig
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (t, h) in zip(axes, acc.sigma.items()):
        edges = SIGMA_BINS[t]
        ax.stairs(h / max(h.sum(), 1) / np.diff(np.log10(edges)), edges, fill=True, alpha=0.6)
        ax.set(xscale="log", xlabel=f"predicted sigma of {LABEL.get(t, t)}", ylabel="density per dex")
    fig.suptitle("Predicted uncertainties (in-distribution sources)")
    out["sigma"] = fig
    return out


def summarise(parts, summary_path, figure_paths, dpi: int = 110) -> dict:
    """Fold every partition's table into summary.json and draw the figures (``figure_paths``,
    named <figure>.png); one partition in memory at a time."""
    from ..evaluate.figures.common import save_figure
    from ..io.atomic import write_json

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
    figs = figures(acc)
    for path in figure_paths:
        save_figure(figs.pop(Path(path).stem), path, dpi)
    for fig in figs.values():
        _close(fig)
    write_json(summary, summary_path)
    return summary


def _close(fig):
    from ..evaluate.figures.common import _plt

    _plt().close(fig)
