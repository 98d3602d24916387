"""Figures of the mass/age task (Zhang et al. 2026, Fig. 5)."""

from __future__ import annotations

import numpy as np

from .common import _one_to_one_panels, _plt

# -- mass and age (Zhang et al. 2026) -------------------------------------------------------------
MASS_AGE_PANELS = (
    ("xgboost_xp30_colours", "XGBoost: bp/rp 0-29 + colours"),
    ("model_xp30_colours", "Model: bp/rp 0-29 + colours"),
    ("xgboost_xp29_colours_params", "XGBoost: + teff, logg, [M/H]"),
    ("model_xp29_colours_params", "Model: + teff, logg, [M/H]"),
)


def _mass_age_panels(target, unit):
    return _one_to_one_panels(MASS_AGE_PANELS, target, f"{target} [{unit}]", (1, 4), (19, 4.4))


def mass_luminosity_fig(tables, metrics):
    """The giant branch's mass-luminosity relation: the HR diagram coloured by the reference mass and by
    the model's, and the median mass in bins of log L for both."""
    plt = _plt()
    d = tables["predictions"]
    d = d[(d.panel == "model_xp30_colours") & np.isfinite(d.log_l_lsun)]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), constrained_layout=True)
    vmin, vmax = np.nanpercentile(d.ref_mass, [2, 98]) if len(d) else (0.8, 2.0)
    for ax, col, title in ((axes[0], "ref_mass", f"{metrics['reference']} mass"), (axes[1], "mass", "model mass (bp/rp 0-29 + colours)")):
        sc = ax.scatter(d.teff, d.log_l_lsun, c=d[col], s=3, cmap="viridis", vmin=vmin, vmax=vmax, rasterized=True)
        ax.invert_xaxis()
        ax.set_xlabel(r"APOGEE $T_\mathrm{eff}$ [K]")
        ax.set_ylabel(r"$\log_{10} L / L_\odot$")
        ax.set_title(title, fontsize=10)
        fig.colorbar(sc, ax=ax, label=r"mass [$M_\odot$]", shrink=0.85)
    edges = np.nanpercentile(d.log_l_lsun, np.linspace(0, 100, 11)) if len(d) else np.linspace(0, 3, 11)
    mid = 0.5 * (edges[1:] + edges[:-1])
    idx = np.clip(np.digitize(d.log_l_lsun, edges) - 1, 0, mid.size - 1)
    for col, style, label in (("ref_mass", "k-o", metrics["reference"]), ("mass", "C1-s", "model")):
        med = [np.nanmedian(d[col].to_numpy()[idx == i]) if (idx == i).any() else np.nan for i in range(mid.size)]
        axes[2].plot(mid, med, style, ms=4, label=label)
    axes[2].set_xlabel(r"$\log_{10} L / L_\odot$")
    axes[2].set_ylabel(r"median mass [$M_\odot$]")
    axes[2].legend(fontsize=8)
    axes[2].set_title("mass-luminosity relation (deciles of L)", fontsize=10)
    return fig
