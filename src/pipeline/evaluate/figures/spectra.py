"""Figures of the tasks that ask for spectra: c (Figs. 6, 7, B3), d (Fig. 9), f (Fig. 11)."""

from __future__ import annotations

import numpy as np

from .common import LINES_NM, _one_to_one, _plt, _stats_text


# -- c ---------------------------------------------------------------------------------------------
def _mark_lines(ax):
    for kind, ls in (("H", ":"), ("metal", "--"), ("CaT", "-.")):
        for x in LINES_NM[kind]:
            ax.axvline(x, color="0.6", lw=0.6, ls=ls)


def _spectra_panel(ax, rows, flux_col, label_fn, truth_col=None, cmap="plasma"):
    colours = _plt().get_cmap(cmap)(np.linspace(0.05, 0.9, len(rows)))
    for (_, r), col in zip(rows.iterrows(), colours):
        grid = np.asarray(r.wavelength_nm)
        ax.plot(grid, np.asarray(r[flux_col]), color=col, lw=1.2, label=label_fn(r))
        if truth_col is not None and np.isfinite(np.asarray(r[truth_col], float)).any():
            ax.plot(grid, np.asarray(r[truth_col]), color=col, lw=0.8, ls="--")
    _mark_lines(ax)
    ax.set_xlim(380, 1000)
    ax.set_xlabel("wavelength [nm]")
    ax.legend(fontsize=7)


def _two_sequences(tables, panels, ylabel):
    """Two panels of spectra; each panel: (sequence, flux column, legend label, truth column or None, colour map, title)."""
    plt = _plt()
    s = tables["spectra"]
    fig, ax = plt.subplots(1, 2, figsize=(14, 5), constrained_layout=True)
    for a, (seq, col, label, truth, cmap, title) in zip(ax, panels):
        _spectra_panel(a, s[s.sequence == seq], col, label, truth, cmap)
        a.set_title(title)
        a.set_ylabel(ylabel)
    return fig


def sequences_fig(tables, metrics):
    return _two_sequences(
        tables,
        (
            (
                "dwarfs",
                "flux_10pc",
                lambda r: f"Teff {r.teff:.0f} K, logg {r.logg:.2f}",
                None,
                "plasma",
                "dwarfs (eq. 12), [M/H] = 0, E(B-V) = 0",
            ),
            (
                "giants",
                "flux_10pc",
                lambda r: f"logg {r.logg:.1f}, Teff {r.teff:.0f} K",
                None,
                "plasma",
                "giants (eq. 13), [M/H] = 0, E(B-V) = 0",
            ),
        ),
        r"flux density at 10 pc [W m$^{-2}$ nm$^{-1}$]",
    )


def metallicity_fig(tables, metrics):
    return _two_sequences(
        tables,
        (
            (
                "dwarfs_m_h",
                "flux_g_normalised",
                lambda r: f"[M/H] {r.m_h:+.1f}",
                "true_flux_g_normalised",
                "viridis",
                "dwarfs: Teff 5500 K, logg 4.6 (dashed: the mock's truth)",
            ),
            (
                "giants_m_h",
                "flux_g_normalised",
                lambda r: f"[M/H] {r.m_h:+.1f}",
                None,
                "viridis",
                "giants: logg 2.5, Teff left to the model",
            ),
        ),
        r"$G$-normalised flux density [W m$^{-2}$ nm$^{-1}$ / (e$^-$ s$^{-1}$)]",
    )


def coefficients_fig(tables, metrics):
    plt = _plt()
    c = tables["coefficients"]
    fig, axes = plt.subplots(2, 5, figsize=(20, 8), constrained_layout=True)
    for ax, name in zip(axes.ravel(), [f"bp{k}" for k in range(5)] + [f"rp{k}" for k in range(5)]):
        _one_to_one(
            ax,
            c[f"ref_{name}"].to_numpy(),
            c[name].to_numpy(),
            c[f"{name}_err"].to_numpy(),
            "predicted $\\sigma$",
            fig=fig,
            text=_stats_text(metrics["coefficients"][name]),
        )
        ax.set_title(f"{name} from teff, logg, m_h, logebv", fontsize=9)
        ax.set_xlabel(f"{metrics['reference']} {name}")
    return fig


# -- d ---------------------------------------------------------------------------------------------
def _example_rows(p):
    """Four stars like Fig. 8/9: a solar giant, a metal-poor giant, a reddened giant, a dwarf."""
    rp = p[p.direction == "bp_from_rp"].reset_index(drop=True)
    picks = []
    for cond in (
        (rp.logg < 3.2) & (rp.m_h.abs() < 0.15) & (rp.logebv < -3),
        (rp.logg < 3.2) & (rp.m_h < -0.8),
        (rp.logg < 3.2) & (rp.logebv > -1.0),
        (rp.logg > 4.0) & (rp.logebv < -3),
    ):
        idx = np.nonzero(cond.to_numpy())[0]
        picks.append(int(idx[0]) if idx.size else len(picks))
    return [int(rp.row.iloc[i]) for i in picks if i < len(rp)]


def examples_fig(tables, metrics):
    from .. import science

    plt = _plt()
    p = tables["predictions"]
    rows = _example_rows(p)
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 3.2 * len(rows)), constrained_layout=True, squeeze=False)
    bp, rpn = [f"bp{k}" for k in range(55)], [f"rp{k}" for k in range(55)]
    for ax, row in zip(axes[:, 0], rows):
        a = p[(p.row == row) & (p.direction == "bp_from_rp")].iloc[0]
        b = p[(p.row == row) & (p.direction == "rp_from_bp")].iloc[0]
        true_bp, true_rp = a[[f"ref_{c}" for c in bp]].to_numpy(float), b[[f"ref_{c}" for c in rpn]].to_numpy(float)
        grid, f_true = science.xp_spectrum(true_bp, true_rp)
        _, f_bp = science.xp_spectrum(a[bp].to_numpy(float), true_rp)
        _, f_rp = science.xp_spectrum(true_bp, b[rpn].to_numpy(float))
        ax.plot(grid, f_true[0], "k", lw=1.5, label="truth" if metrics["reference"] == "truth" else "observed")
        ax.plot(grid[grid < 640], f_bp[0][grid < 640], "C0", lw=1.2, label="BP predicted from RP")
        ax.plot(grid[grid > 640], f_rp[0][grid > 640], "C3", lw=1.2, label="RP predicted from BP")
        ax.axvspan(330, 640, color="C0", alpha=0.06)
        ax.axvspan(640, 1020, color="C3", alpha=0.06)
        ax.set_title(
            f"test star row {row}: Teff {a.teff:.0f} K, logg {a.logg:.2f}, [M/H] {a.m_h:+.2f}, ln E(B-V) {a.logebv:.1f}", fontsize=9
        )
        ax.set_ylabel("$G$-normalised flux")
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("wavelength [nm]")
    return fig


def residuals_fig(tables, metrics):
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(13, 4.5), constrained_layout=True)
    for a, (direction, band) in zip(ax, (("bp_from_rp", "bp"), ("rp_from_bp", "rp"))):
        m = metrics["directions"][direction]
        k = np.arange(55)
        a.semilogy(
            k, [m["coefficients"][f"{band}{i}"]["robust_scatter"] for i in k], "C0o-", ms=3, label="model, predicted from the other band"
        )
        a.semilogy(k, [m["noise_floor"][f"{band}{i}"] for i in k], "k--", label="observed coefficients (noise floor)")
        a.semilogy(k, [m["coefficients"][f"{band}{i}"]["median_sigma"] for i in k], "C1:", label="median predicted $\\sigma$")
        a.set_xlabel(f"{band.upper()} coefficient index")
        a.set_ylabel(f"robust scatter about the {metrics['reference']}")
        a.set_title(f"{direction.replace('_', ' ')}: median |flux/true - 1| = {m['median_abs_fractional_flux_difference']:.3f}")
        a.legend(fontsize=8)
    return fig


# -- f ---------------------------------------------------------------------------------------------
def curve_fig(tables, metrics):
    from .. import science

    plt = _plt()
    s, c = tables["spectra"], tables["curve"]
    fig, ax = plt.subplots(1, 2, figsize=(14, 5), constrained_layout=True)
    pick = s[np.isclose(s.logg, 2.5)]
    if pick.empty:
        pick = s[np.isclose(s.logg, s.logg.iloc[len(s) // 2])]
    pick = pick.sort_values("ebv_c19")
    for (_, r), col in zip(pick.iterrows(), plt.get_cmap("autumn")(np.linspace(0, 0.8, len(pick)))):
        ax[0].plot(np.asarray(r.wavelength_nm), np.asarray(r.flux_10pc), color=col, label=f"E(B-V) = {r.ebv_c19:.2f}")
    ax[0].set_title(f"giant: Teff {pick.teff.iloc[0]:.0f} K, logg {pick.logg.iloc[0]:.2f}, [M/H] = 0")
    ax[0].set_xlabel("wavelength [nm]")
    ax[0].set_ylabel(r"flux density at 10 pc [W m$^{-2}$ nm$^{-1}$]")
    ax[0].legend(fontsize=8)
    w = c.lambda_nm.to_numpy()
    ax[1].plot(
        w,
        c.r_median,
        "k--",
        lw=1.5,
        label=f"model (median), reference E(B-V) = {metrics['reference_ebv_c19']:.3f}, rms vs injected {metrics['rms_model_vs_injected']:.3f}",
    )
    ax[1].fill_between(w, c.r_median - c.r_std, c.r_median + c.r_std, color="C0", alpha=0.3, label="spread over the grid")
    ax[1].plot(
        w,
        c.r_median_zero_reference,
        "k:",
        lw=1,
        label=f"model, E(B-V) = 0 reference (paper), rms {metrics['rms_model_vs_injected_zero_reference']:.3f}",
    )
    ax[1].plot(w, c.r_xp_truth, color="0.5", lw=1, label=f"mock truth through XP, rms {metrics['rms_xp_truth_vs_injected']:.3f}")
    for rv, col in ((2.5, "C2"), (3.1, "C3"), (4.0, "C4")):
        ax[1].plot(w, science.fitzpatrick_r(w, rv), color=col, lw=1, label=f"Fitzpatrick (1999) $R_V$ = {rv}")
    lo, hi = metrics["wavelength_range_nm"]
    ax[1].set_xlim(lo - 20, hi + 20)
    ax[1].set_ylim(0, 6)
    ax[1].set_xlabel("wavelength [nm]")
    ax[1].set_ylabel(r"$R(\lambda) = A(\lambda) / E(B-V)_\mathrm{true}$")
    ax[1].legend(fontsize=7)
    return fig
