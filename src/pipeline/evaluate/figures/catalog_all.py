"""Figures of catalog_all: the summary's sky maps, Kiel diagram and sigma densities (from the
binned tables ``apply.summary`` writes), and the judgement against the mock's truth (from the
joined table ``evaluate.catalog_all`` writes). Drawn by their own rules from those caches, so a
restyle never re-reads a partition or reruns the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...stats import median_mad_std
from .common import LABEL, _plt


def _mollweide(sky: pd.DataFrame, column: str, title: str, label: str, cmap: str):
    """A per-pixel mean on the sky; ``sky`` holds the NESTED HEALPix index, its level and the means."""
    import healpy

    plt = _plt()
    level = int(sky.level.iloc[0]) if len(sky) else 5
    theta, phi = healpy.pix2ang(2**level, sky.pixel.to_numpy(np.int64), nest=True)
    ra = np.degrees(phi)  # the source_id encodes an equatorial (ICRS) HEALPix index
    dec = 90.0 - np.degrees(theta)
    values = sky[column].to_numpy(float)
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


def sky_m_h_fig(tables, summary):
    return _mollweide(tables["sky"], "m_h", "Mean predicted [M/H] (equatorial, HEALPix)", "[M/H] [dex]", "RdYlBu_r")


def sky_ebv_fig(tables, summary):
    sky = tables["sky"]
    with np.errstate(divide="ignore", invalid="ignore"):
        sky = sky.assign(log_ebv=np.log10(sky.ebv.to_numpy(float)))
    return _mollweide(sky, "log_ebv", "Mean predicted E(B-V) (equatorial)", r"$\log_{10} E(B-V)$", "magma_r")


def _edges(lo, hi):
    return np.append(np.asarray(lo, float), np.asarray(hi, float)[-1:])


def kiel_summary_fig(tables, summary):
    plt = _plt()
    k = tables["kiel"]
    teff, logg = np.unique(k.teff_lo), np.unique(k.logg_lo)
    counts = k.pivot(index="teff_lo", columns="logg_lo", values="count").reindex(index=teff, columns=logg).to_numpy(float)
    te = np.append(teff, k.teff_hi.max())
    lg = np.append(logg, k.logg_hi.max())
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    with np.errstate(divide="ignore"):
        im = ax.pcolormesh(te, lg, np.log10(np.where(counts > 0, counts, np.nan)).T, cmap="viridis", rasterized=True)
    fig.colorbar(im, ax=ax, label=r"$\log_{10}$ sources per bin")
    ax.set(xlabel=LABEL["teff"], ylabel=LABEL["logg"], title="Predicted Kiel diagram (in-distribution sources)")
    ax.invert_xaxis()
    ax.invert_yaxis()
    return fig


def sigma_fig(tables, summary):
    plt = _plt()
    s = tables["sigma"]
    labels = list(dict.fromkeys(s.label))
    fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 3.4), squeeze=False)
    for ax, t in zip(axes[0], labels):
        rows = s[s.label == t]
        edges, h = _edges(rows.lo, rows.hi), rows["count"].to_numpy(float)
        ax.stairs(h / max(h.sum(), 1) / np.diff(np.log10(edges)), edges, fill=True, alpha=0.6)
        ax.set(xscale="log", xlabel=f"predicted sigma of {LABEL.get(t, t)}", ylabel="density per dex")
    fig.suptitle("Predicted uncertainties (in-distribution sources)")
    return fig


def _populations(table: pd.DataFrame) -> dict:
    from ..catalog_all import populations

    return populations(pd.DataFrame({k[5:]: table[k] for k in table if k.startswith("true_")}))


def residuals_by_g_fig(tables, metrics):
    plt = _plt()
    table = tables["judged"]
    labels = list(metrics["labels"])
    fig, axes = plt.subplots(1, len(labels), figsize=(3.4 * len(labels), 3.3))
    ok, g = ~table.ood.to_numpy(bool), table.phot_g_mean_mag.to_numpy(float)
    for ax, t in zip(axes, labels):
        m = metrics["labels"][t]
        centres = [(b["g_min"] + b["g_max"]) / 2 for b in m["g_bins"]]
        ax.plot(centres, [b["scatter"] for b in m["g_bins"]], "o-", color="k", label="all in distribution")
        for pop, sel in _populations(table).items():
            if pop == "all":
                continue
            vals = []
            for b in m["g_bins"]:
                d = table[f"d_{t}"].to_numpy(float)[sel & ok & (g >= b["g_min"]) & (g < b["g_max"])]
                d = d[np.isfinite(d)]
                vals.append(median_mad_std(d)[1] if d.size >= 5 else np.nan)
            ax.plot(centres, vals, ".--", label=pop)
        ax.set(xlabel="G [mag]", ylabel=f"robust scatter{' (relative)' if m['relative'] else ''}", title=LABEL.get(t, t))
    axes[0].legend(fontsize=7)
    fig.suptitle("Answers for XP sources without APOGEE labels, against the truth, by G")
    fig.tight_layout()
    return fig


def zscores_fig(tables, metrics):
    plt = _plt()
    table = tables["judged"]
    labels = list(metrics["labels"])
    fig, axes = plt.subplots(1, len(labels), figsize=(3.4 * len(labels), 3.0))
    x = np.linspace(-5, 5, 101)
    for ax, t in zip(axes, labels):
        z = table[f"z_{t}"].to_numpy(float)[~table.ood.to_numpy(bool)]
        z = z[np.isfinite(z)]
        ax.hist(np.clip(z, -5, 5), bins=x, density=True, alpha=0.6, color="C0")
        ax.plot(x, np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi), "k-", lw=1, label="N(0, 1)")
        spread = metrics["labels"][t]["in_distribution"]["z_spread"]
        ax.set(xlabel="(answer - truth) / sigma", title=f"{LABEL.get(t, t)}: spread {spread:.2f}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
