"""Figures of the evaluation tasks, drawn only from each task's cached tables and metrics.

Restyling a figure reruns only its figure rule: nothing here touches the model. ``FIGURES``
maps task -> figure name -> function(tables, metrics) returning a matplotlib Figure; the
captions shown in the HTML report live in workflow/report/figures.yaml under the same names.
"""
from __future__ import annotations

import numpy as np

from .data import read_metrics, read_tables

LABEL = {"teff": r"$T_\mathrm{eff}$ [K]", "logg": r"$\log g$ [dex]", "m_h": "[M/H] [dex]", "logebv": r"$\ln E(B-V)$",
         "bprp": r"$G_\mathrm{BP}-G_\mathrm{RP}$", "jk": r"$J-K$", "rp0": "rp0 / $F_G$"}
# a few line positions (nm) drawn on spectra, as in Figs. 6-7
LINES_NM = {"H": (410.2, 434.0, 486.1, 656.3), "metal": (516.9, 527.0, 589.3), "CaT": (849.8, 854.2, 866.2)}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import gaiaxpy  # noqa: F401  (its plotter switches LaTeX on when imported: import it first, then switch it off)
    import matplotlib.pyplot as plt

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


# -- a ---------------------------------------------------------------------------------------------
PANELS_A = (("xgboost_xp30_colours", "XGBoost: bp/rp 0-29 + colours"), ("model_xp30_colours", "Model: bp/rp 0-29 + colours"),
            ("model_xp5_colours", "Model: bp/rp 0-4 + colours"), ("model_random64", "Model: 64 random of 113, any order"),
            ("model_xp_high", "Model: bp/rp 25-54 only"), ("model_xp_high_labels", "Model: bp/rp 25-54 + teff, logg, m_h"))


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
            _one_to_one(ax, t[f"ref_{target}"].to_numpy(), t[target].to_numpy(), c, f"predicted $\\sigma$ {label}", fig=fig,
                        text=_stats_text(metrics["panels"][panel][target]))
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(f"{metrics['reference']} {label}")
            ax.set_ylabel(f"predicted {label}")
        return fig
    return draw


def _task_a(target):
    return _one_to_one_panels(PANELS_A, target, LABEL[target], (2, 3), (15, 9.5))


# -- b ---------------------------------------------------------------------------------------------
def perception_fig(tables, metrics):
    plt = _plt()
    p = tables["predictions"]
    fig, ax = plt.subplots(1, 3, figsize=(17, 5.2), constrained_layout=True)
    sc = ax[0].scatter(p.teff, p.logg, c=p.m_h, s=2, cmap="coolwarm", vmin=-1.5, vmax=0.4, rasterized=True)
    fig.colorbar(sc, ax=ax[0], label="predicted [M/H]")
    ax[0].set_xlim(7000, 3000)
    ax[0].set_ylim(5.2, -0.2)
    ax[0].set_xlabel("predicted " + LABEL["teff"])
    ax[0].set_ylabel("predicted " + LABEL["logg"])
    ax[0].set_title("Kiel diagram from bp/rp 0-29 + colours")
    t = metrics["targets"]
    _one_to_one(ax[1], p.ref_logebv.to_numpy(), p.logebv.to_numpy(), p.logebv_err.to_numpy(), "predicted $\\sigma$", fig=fig,
                text=_stats_text(t["logebv"]))
    ax[1].set_xlabel(f"{metrics['reference']} " + LABEL["logebv"])
    ax[1].set_ylabel("predicted " + LABEL["logebv"])
    _one_to_one(ax[2], p.ref_distance_kpc.to_numpy(), p.distance_kpc.to_numpy(), p.distance_frac_err.to_numpy(),
                "fractional $\\sigma$", fig=fig, text=f"fractional $\\sigma$ = {t['distance_fractional']['robust_scatter']:.3f}")
    ax[2].set_xlabel(f"{metrics['reference']} distance [kpc]")
    ax[2].set_ylabel("distance from predicted g_fakemag and G [kpc]")
    return fig


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
    return _two_sequences(tables, (
        ("dwarfs", "flux_10pc", lambda r: f"Teff {r.teff:.0f} K, logg {r.logg:.2f}", None, "plasma", "dwarfs (eq. 12), [M/H] = 0, E(B-V) = 0"),
        ("giants", "flux_10pc", lambda r: f"logg {r.logg:.1f}, Teff {r.teff:.0f} K", None, "plasma", "giants (eq. 13), [M/H] = 0, E(B-V) = 0"),
    ), r"flux density at 10 pc [W m$^{-2}$ nm$^{-1}$]")


def metallicity_fig(tables, metrics):
    return _two_sequences(tables, (
        ("dwarfs_m_h", "flux_g_normalised", lambda r: f"[M/H] {r.m_h:+.1f}", "true_flux_g_normalised", "viridis",
         "dwarfs: Teff 5500 K, logg 4.6 (dashed: the mock's truth)"),
        ("giants_m_h", "flux_g_normalised", lambda r: f"[M/H] {r.m_h:+.1f}", None, "viridis", "giants: logg 2.5, Teff left to the model"),
    ), r"$G$-normalised flux density [W m$^{-2}$ nm$^{-1}$ / (e$^-$ s$^{-1}$)]")


def coefficients_fig(tables, metrics):
    plt = _plt()
    c = tables["coefficients"]
    fig, axes = plt.subplots(2, 5, figsize=(20, 8), constrained_layout=True)
    for ax, name in zip(axes.ravel(), [f"bp{k}" for k in range(5)] + [f"rp{k}" for k in range(5)]):
        _one_to_one(ax, c[f"ref_{name}"].to_numpy(), c[name].to_numpy(), c[f"{name}_err"].to_numpy(), "predicted $\\sigma$", fig=fig,
                    text=_stats_text(metrics["coefficients"][name]))
        ax.set_title(f"{name} from teff, logg, m_h, logebv", fontsize=9)
        ax.set_xlabel(f"{metrics['reference']} {name}")
    return fig


# -- d ---------------------------------------------------------------------------------------------
def _example_rows(p):
    """Four stars like Fig. 8/9: a solar giant, a metal-poor giant, a reddened giant, a dwarf."""
    rp = p[p.direction == "bp_from_rp"].reset_index(drop=True)
    picks = []
    for cond in ((rp.logg < 3.2) & (rp.m_h.abs() < 0.15) & (rp.logebv < -3), (rp.logg < 3.2) & (rp.m_h < -0.8),
                 (rp.logg < 3.2) & (rp.logebv > -1.0), (rp.logg > 4.0) & (rp.logebv < -3)):
        idx = np.nonzero(cond.to_numpy())[0]
        picks.append(int(idx[0]) if idx.size else len(picks))
    return [int(rp.row.iloc[i]) for i in picks if i < len(rp)]


def examples_fig(tables, metrics):
    from . import science

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
        ax.set_title(f"test star row {row}: Teff {a.teff:.0f} K, logg {a.logg:.2f}, [M/H] {a.m_h:+.2f}, ln E(B-V) {a.logebv:.1f}", fontsize=9)
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
        a.semilogy(k, [m["coefficients"][f"{band}{i}"]["robust_scatter"] for i in k], "C0o-", ms=3, label="model, predicted from the other band")
        a.semilogy(k, [m["noise_floor"][f"{band}{i}"] for i in k], "k--", label="observed coefficients (noise floor)")
        a.semilogy(k, [m["coefficients"][f"{band}{i}"]["median_sigma"] for i in k], "C1:", label="median predicted $\\sigma$")
        a.set_xlabel(f"{band.upper()} coefficient index")
        a.set_ylabel(f"robust scatter about the {metrics['reference']}")
        a.set_title(f"{direction.replace('_', ' ')}: median |flux/true - 1| = {m['median_abs_fractional_flux_difference']:.3f}")
        a.legend(fontsize=8)
    return fig


# -- e ---------------------------------------------------------------------------------------------
def kiel_fig(tables, metrics):
    from . import science

    plt = _plt()
    g, o = tables["grid"], tables["observed"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 11), constrained_layout=True)
    panels = ((axes[0, 0], o.teff, o.logg, o.log_lum, r"$\log L_G / L_\odot$", "test stars (" + metrics["reference"] + ")", "plasma"),
              (axes[0, 1], g.teff, g.logg, g.log_lum, r"model $\log L_G / L_\odot$", "model: Teff, g_fakemag from (logg, [M/H])", "plasma"),
              (axes[1, 0], g.teff, g.logg, g.m_h, "input [M/H]", "model, coloured by input [M/H]", "coolwarm"),
              (axes[1, 1], g.teff, g.logg, g.teff_err, r"predicted $\sigma_{T_\mathrm{eff}}$ [K]", "model, Teff uncertainty", "viridis"))
    lg = np.linspace(0.5, 3.9, 50)
    for ax, x, y, c, cl, title, cmap in panels:
        vmin, vmax = np.nanpercentile(c, [2, 98])
        sc = ax.scatter(x, y, c=c, s=1.5, cmap=cmap, vmin=vmin, vmax=vmax, rasterized=True)
        fig.colorbar(sc, ax=ax, label=cl)
        ax.plot(science.teff_rgb(lg), lg, "r--", lw=1, label="RGB, eq. 13")
        ax.set_xlim(7500, 3000)
        ax.set_ylim(5.2, -0.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(LABEL["teff"])
        ax.set_ylabel(LABEL["logg"])
    axes[0, 0].legend(fontsize=8)
    return fig


# -- f ---------------------------------------------------------------------------------------------
def curve_fig(tables, metrics):
    from . import science

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
    ax[1].plot(w, c.r_median, "k--", lw=1.5,
               label=f"model (median), reference E(B-V) = {metrics['reference_ebv_c19']:.3f}, rms vs injected {metrics['rms_model_vs_injected']:.3f}")
    ax[1].fill_between(w, c.r_median - c.r_std, c.r_median + c.r_std, color="C0", alpha=0.3, label="spread over the grid")
    ax[1].plot(w, c.r_median_zero_reference, "k:", lw=1,
               label=f"model, E(B-V) = 0 reference (paper), rms {metrics['rms_model_vs_injected_zero_reference']:.3f}")
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


# -- g, h, i ---------------------------------------------------------------------------------------
def colours_fig(tables, metrics):
    plt = _plt()
    p = tables["predictions"]
    fig, ax = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    for a, t in zip(ax, ("bprp", "jk")):
        _one_to_one(a, p[f"ref_{t}"].to_numpy(), p[t].to_numpy(), p[f"{t}_err"].to_numpy(), "predicted $\\sigma$", fig=fig,
                    text=_stats_text(metrics["targets"][t]))
        a.set_xlabel(f"{metrics['reference']} {LABEL[t]}")
        a.set_ylabel(f"predicted {LABEL[t]} (never requested in training)")
    return fig


def rp0_fig(tables, metrics):
    plt = _plt()
    p = tables["predictions"]
    sets = (("params", "teff, logg, m_h"), ("params_2mass", "+ J-H, J-K"), ("params_2mass_bprp", "+ BP-RP"))
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5), constrained_layout=True)
    for j, (s, title) in enumerate(sets):
        t = p[p.set == s]
        m = metrics["sets"][s]
        _one_to_one(axes[0, j], t.ref_rp0.to_numpy(), t.rp0.to_numpy(), t.rp0_err.to_numpy(), "predicted $\\sigma$", fig=fig,
                    text=_stats_text(m["model"]))
        _one_to_one(axes[1, j], t.ref_rp0.to_numpy(), t.xgboost_rp0.to_numpy(), text=_stats_text(m["xgboost"]))
        axes[0, j].set_title(f"model: {title}", fontsize=10)
        axes[1, j].set_title(f"XGBoost expert: {title}", fontsize=10)
        for a in axes[:, j]:
            a.set_xlabel(f"{metrics['reference']} rp0")
            a.set_ylabel("predicted rp0")
    return fig


def attention_fig(tables, metrics):
    plt = _plt()
    w = tables["weights"]
    req, inp = list(dict.fromkeys(w.request)), list(dict.fromkeys(w.input))
    mats = {c: w[w.case == c].pivot(index="input", columns="request", values="weight").loc[inp, req].to_numpy() for c in ("zero", "high")}
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.3), constrained_layout=True)
    titles = ("E(B-V) = 0", f"E(B-V) = {metrics['ebv_high']:.1f}", "high - zero")
    for a, m, title, cmap in zip(ax, (mats["zero"], mats["high"], mats["high"] - mats["zero"]), titles, ("viridis", "viridis", "coolwarm")):
        lim = np.abs(m).max() if cmap == "coolwarm" else None
        im = a.imshow(m, cmap=cmap, vmin=-lim if lim else 0, vmax=lim if lim else 1)
        for (i, j), v in np.ndenumerate(m):
            a.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if cmap == "viridis" and v < 0.5 else "k", fontsize=9)
        a.set_xticks(range(len(req)), [f"request {r}" for r in req], rotation=20)
        a.set_yticks(range(len(inp)), inp)
        a.set_title(title)
        fig.colorbar(im, ax=a, shrink=0.8)
    return fig


# -- mass and age (Zhang et al. 2026) -------------------------------------------------------------
MASS_AGE_PANELS = (("xgboost_xp30_colours", "XGBoost: bp/rp 0-29 + colours"), ("model_xp30_colours", "Model: bp/rp 0-29 + colours"),
                   ("xgboost_xp29_colours_params", "XGBoost: + teff, logg, [M/H]"), ("model_xp29_colours_params", "Model: + teff, logg, [M/H]"))


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


# -- contrastive search (appendix C) ----------------------------------------------------------------
def recovery_fig(tables, metrics):
    plt = _plt()
    c = tables["curve"]
    fig, ax = plt.subplots(figsize=(6, 4.4), constrained_layout=True)
    ax.loglog(c.n, c.rate, "C0-", label="search: own spectrum within top N")
    ax.loglog(c.n, c.random, "k--", label="random")
    top = [k for k in metrics["recovery"] if k.startswith("top_")]
    for k in top:
        n = int(k[4:])
        ax.plot(n, metrics["recovery"][k]["rate"], "C0o", ms=4)
    ax.set_xlabel("N")
    ax.set_ylabel("top-N recovery rate")
    ax.set_title(f"{metrics['n_database']} test spectra; queries: {', '.join(metrics['query_tokens'])}", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def queries_fig(tables, metrics):
    plt = _plt()
    db, hits = tables["database"], tables["hits"]
    fig, ax = plt.subplots(figsize=(6.5, 5), constrained_layout=True)
    ax.scatter(db.ref_teff, db.ref_logg, s=1, color="0.8", rasterized=True, label="database")
    for k, q in enumerate(metrics["queries"]):
        h = hits[hits["query"] == k]
        label = ", ".join(f"{t}={v:g}" for t, v in q["query"].items())
        ax.scatter(h.ref_teff, h.ref_logg, s=6, color=f"C{k}", label=f"top {q['n']}: {label}")
        if "teff" in q["query"] and "logg" in q["query"]:
            ax.plot(q["query"]["teff"], q["query"]["logg"], "x", color=f"C{k}", ms=12, mew=2)
    ax.invert_xaxis()
    ax.invert_yaxis()
    ax.set_xlabel(f"{metrics['reference']} {LABEL['teff']}")
    ax.set_ylabel(f"{metrics['reference']} {LABEL['logg']}")
    ax.legend(fontsize=7, markerscale=2)
    return fig


# -- SpectraFM (Koblischke & Bovy 2024) -------------------------------------------------------------
SFM_LABEL = {"teff": r"$T_\mathrm{eff}$ [K]", "logg": r"$\log g$", "fe_h": "[Fe/H]", "o_fe": "[O/Fe]", "mg_fe": "[Mg/Fe]"}
SFM_MODELS = {"fcnn": "FCNN from scratch (100 iron-rich stars)", "pretrain": "pre-trained on synthetic spectra",
              "finetune_real": "fine-tuned on observed spectra (1st half)", "finetune_fe": "fine-tuned again on 100 iron-rich stars"}


def spectrafm_fe_fig(tables, metrics):
    """Fig. 4: [Fe/H] from the 512-pixel window by each model, iron-poor stars shaded."""
    plt = _plt()
    d, fw = tables["fe_h"], metrics["fe_h_window"]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.6), constrained_layout=True, sharex=True, sharey=True)
    for ax, (m, title) in zip(axes, SFM_MODELS.items()):
        p = d[d.model == m]
        v = fw["models"][m]
        _one_to_one(ax, p.reference.to_numpy(float), p.prediction.to_numpy(float), c=p.sigma.to_numpy(float),
                    clabel=r"predicted $\sigma$", fig=fig,
                    text=f"RMSE {v['rmse_all']:.3f} (all)\n{v['rmse_fe_h_poor']:.3f} ([Fe/H] < -1, {fw['n_fe_h_poor']} stars)")
        ax.axvspan(ax.get_xlim()[0], -1.0, color="0.9", zorder=-1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"{metrics['reference']} [Fe/H]")
    axes[0].set_ylabel("predicted [Fe/H]")
    fig.suptitle(f"[Fe/H] from observed pixels {fw['window_aa'][0]:.0f}-{fw['window_aa'][1]:.0f} A", fontsize=10)
    return fig


def spectrafm_table1_fig(tables, metrics):
    """Table 1 as one-to-one panels: each label from observed spectra, pre-trained vs fine-tuned."""
    plt = _plt()
    d = tables["table1"]
    d = d[d.selected.astype(bool)]
    rows = {(r["model"], r["spectra"], r["label"]): r for r in metrics["table1"]["rows"]}
    labels = list(dict.fromkeys(d.label))
    runs = (("pretrain", "observed"), ("finetune_real", "observed"))
    fig, axes = plt.subplots(2, len(labels), figsize=(3.8 * len(labels), 7.5), constrained_layout=True, squeeze=False)
    for i, (m, kind) in enumerate(runs):
        for j, label in enumerate(labels):
            p = d[(d.model == m) & (d.spectra == kind) & (d.label == label)]
            r = rows[(m, kind, label)]
            _one_to_one(axes[i, j], p.reference.to_numpy(float), p.prediction.to_numpy(float),
                        text=f"scatter {r['scatter']:.3g} (paper {r['paper']:.3g})\nbias {r['bias']:.2g}")
            axes[i, j].set_title(f"{SFM_MODELS[m]}", fontsize=8)
            axes[i, j].set_xlabel(f"{metrics['reference']} {SFM_LABEL.get(label, label)}")
    for i in range(2):
        axes[i, 0].set_ylabel("predicted")
    rng = metrics["table1"]["range_aa"]
    fig.suptitle(f"observed spectra {rng[0]:.0f}-{rng[1]:.0f} A, test stars with {metrics['table1']['logg_range'][0]} < logg < "
                 f"{metrics['table1']['logg_range'][1]}", fontsize=10)
    return fig


def spectrafm_attention_fig(tables, metrics):
    """Fig. 5: the pre-trained model's attention per pixel for each label, with the mock's line list."""
    plt = _plt()
    a, lines = tables["attention"], tables["lines"]
    summary = {s["label"]: s for s in metrics["attention"]}
    labels = list(dict.fromkeys(a.label))
    fig, axes = plt.subplots(len(labels), 1, figsize=(16, 2.1 * len(labels)), sharex=True, constrained_layout=True, squeeze=False)
    colours = {"Fe": "C3", "Mg": "C2", "O": "C0", "Si": "C4", "H": "C1"}
    for ax, label in zip(axes[:, 0], labels):
        p = a[a.label == label]
        lam, att = p.wavelength_aa.to_numpy(float), p.attention.to_numpy(float)
        att = np.where(np.r_[False, np.diff(lam) > 5.0], np.nan, att)  # break the curve at the detector gaps
        ax.plot(lam, att, "k-", lw=0.5)
        s = summary[label]
        shown = lines if s["element"] == "any" else lines[lines.element == s["element"]]
        if s["element"] == "any":
            shown = shown[shown.real]  # every line would hide the curve: the named APOGEE features only
        for _, ln in shown.iterrows():
            real = bool(ln.get("real", True))
            ax.axvline(ln.wavelength_aa, color=colours.get(ln.element, "0.5"), lw=1.2 if real else 0.5, alpha=0.8 if real else 0.35,
                       zorder=-1)
        ax.set_ylabel("attention / uniform", fontsize=8)
        ax.set_title(f"request {SFM_LABEL.get(label, label)}: {100 * s['top_fraction_near_lines']:.0f}% of the top-{s['top_k']} pixels "
                     f"within {s['tolerance_aa']:g} A of {s['element']} lines ({100 * s['random_fraction_near_lines']:.1f}% of all pixels)",
                     fontsize=9)
    handles = [plt.Line2D([], [], color=c, label=el) for el, c in colours.items()]
    axes[0, 0].legend(handles=handles, fontsize=7, ncol=5, loc="upper right")
    axes[-1, 0].set_xlabel("wavelength [A, vacuum]")
    return fig


FIGURES = {
    "spectra_to_parameters": {"teff": _task_a("teff"), "logg": _task_a("logg"), "m_h": _task_a("m_h")},
    "perception": {"fig5": perception_fig},
    "parameters_to_spectra": {"sequences": sequences_fig, "metallicity": metallicity_fig, "coefficients": coefficients_fig},
    "spectra_to_spectra": {"examples": examples_fig, "residuals": residuals_fig},
    "parameters_to_parameters": {"kiel": kiel_fig},
    "extinction_curve": {"curve": curve_fig},
    "never_requested": {"colours": colours_fig},
    "rp0_experts": {"rp0": rp0_fig},
    "attention": {"attention": attention_fig},
    "mass_age": {"mass": _mass_age_panels("mass", r"$M_\odot$"), "age": _mass_age_panels("age", "Gyr"),
                 "mass_luminosity": mass_luminosity_fig},
    "search": {"recovery": recovery_fig, "queries": queries_fig},
    "spectrafm": {"fe_h": spectrafm_fe_fig, "table1": spectrafm_table1_fig, "attention": spectrafm_attention_fig},
}


def draw(task, figure, predictions_path, metrics_path, out_png, dpi: int = 110):
    """Draw one figure of a task from its cache and write it as PNG."""
    if task not in FIGURES or figure not in FIGURES[task]:
        raise ValueError(f"no figure {task}/{figure}; known: { {t: sorted(f) for t, f in FIGURES.items()} }")
    fig = FIGURES[task][figure](read_tables(predictions_path), read_metrics(metrics_path))
    fig.savefig(out_png, dpi=dpi)
    _plt().close(fig)
