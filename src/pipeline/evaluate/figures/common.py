"""What every figure shares: matplotlib set up for files, labels, the one-to-one panel and its numbers."""

from __future__ import annotations

import numpy as np

LABEL = {
    "teff": r"$T_\mathrm{eff}$ [K]",
    "logg": r"$\log g$ [dex]",
    "m_h": "[M/H] [dex]",
    "logebv": r"$\ln E(B-V)$",
    "bprp": r"$G_\mathrm{BP}-G_\mathrm{RP}$",
    "jk": r"$J-K$",
    "rp0": "rp0 / $F_G$",
}
# a few line positions (nm) drawn on spectra, as in Figs. 6-7
LINES_NM = {"H": (410.2, 434.0, 486.1, 656.3), "metal": (516.9, 527.0, 589.3), "CaT": (849.8, 854.2, 866.2)}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # gaiaxpy's plotter switches LaTeX on when it is imported (a figure that samples XP spectra
    # imports it, in the middle of drawing): every setting of text.usetex reads as False instead,
    # without importing gaiaxpy (1.5 s) in each figure job just to switch it off afterwards
    plt.rcParams.validate["text.usetex"] = lambda _value: False
    plt.rcParams["text.usetex"] = False
    return plt


def _one_to_one(ax, x, y, c=None, clabel=None, cmap="viridis", fig=None, text=None):
    ok = np.isfinite(x) & np.isfinite(y)
    lo, hi = np.nanpercentile(np.concatenate([x[ok], y[ok]]), [0.5, 99.5]) if ok.any() else (0, 1)
    if c is None:
        ax.scatter(x[ok], y[ok], s=2, alpha=0.4, color="k", rasterized=True)
    else:
        cc = np.asarray(c)[ok]
        vmin, vmax = np.nanpercentile(cc, [2, 98]) if cc.size else (0, 1)
        sc = ax.scatter(x[ok], y[ok], s=2, c=cc, cmap=cmap, vmin=vmin, vmax=vmax, rasterized=True)
        if fig is not None:
            fig.colorbar(sc, ax=ax, label=clabel, shrink=0.85)
    ax.plot([lo, hi], [lo, hi], "r--", lw=1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    if text:
        ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=8, bbox=dict(fc="w", alpha=0.7, lw=0))


def _stats_text(m):
    s = f"$\\sigma$ = {m['robust_scatter']:.3g}, bias {m['bias']:.2g}\nN = {m['n']}"
    if "median_sigma" in m:
        s += f"\nmedian pred. $\\sigma$ = {m['median_sigma']:.3g}"
    return s


def _one_to_one_panels(panels, target, label, layout, figsize):
    """A figure function: predicted against reference ``target`` for each (panel, title) of a task's
    predictions table, coloured by the predicted sigma where the panel has one."""

    def draw(tables, metrics):
        plt = _plt()
        p = tables["predictions"]
        fig, axes = plt.subplots(*layout, figsize=figsize, constrained_layout=True)
        for ax, (panel, title) in zip(np.ravel(axes), panels):
            t = p[p.panel == panel]
            c = t[f"{target}_err"].to_numpy() if f"{target}_err" in t and t[f"{target}_err"].notna().any() else None
            _one_to_one(
                ax,
                t[f"ref_{target}"].to_numpy(),
                t[target].to_numpy(),
                c,
                f"predicted $\\sigma$ {label}",
                fig=fig,
                text=_stats_text(metrics["panels"][panel][target]),
            )
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(f"{metrics['reference']} {label}")
            ax.set_ylabel(f"predicted {label}")
        return fig

    return draw
