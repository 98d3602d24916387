"""Figures of the tasks that ask for parameters: a (Fig. 4), b (Fig. 5), e (Fig. 10), g, h, i (Figs. 12-14)."""

from __future__ import annotations

import numpy as np

from .common import LABEL, _one_to_one, _one_to_one_panels, _plt, _stats_text

# -- a ---------------------------------------------------------------------------------------------
PANELS_A = (
    ("xgboost_xp30_colours", "XGBoost: bp/rp 0-29 + colours"),
    ("model_xp30_colours", "Model: bp/rp 0-29 + colours"),
    ("model_xp5_colours", "Model: bp/rp 0-4 + colours"),
    ("model_random64", "Model: 64 random of 113, any order"),
    ("model_xp_high", "Model: bp/rp 25-54 only"),
    ("model_xp_high_labels", "Model: bp/rp 25-54 + teff, logg, m_h"),
)


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
    _one_to_one(
        ax[1],
        p.ref_logebv.to_numpy(),
        p.logebv.to_numpy(),
        p.logebv_err.to_numpy(),
        "predicted $\\sigma$",
        fig=fig,
        text=_stats_text(t["logebv"]),
    )
    ax[1].set_xlabel(f"{metrics['reference']} " + LABEL["logebv"])
    ax[1].set_ylabel("predicted " + LABEL["logebv"])
    _one_to_one(
        ax[2],
        p.ref_distance_kpc.to_numpy(),
        p.distance_kpc.to_numpy(),
        p.distance_frac_err.to_numpy(),
        "fractional $\\sigma$",
        fig=fig,
        text=f"fractional $\\sigma$ = {t['distance_fractional']['robust_scatter']:.3f}",
    )
    ax[2].set_xlabel(f"{metrics['reference']} distance [kpc]")
    ax[2].set_ylabel("distance from predicted g_fakemag and G [kpc]")
    return fig


# -- e ---------------------------------------------------------------------------------------------
def kiel_fig(tables, metrics):
    from .. import science

    plt = _plt()
    g, o = tables["grid"], tables["observed"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 11), constrained_layout=True)
    panels = (
        (axes[0, 0], o.teff, o.logg, o.log_lum, r"$\log L_G / L_\odot$", "test stars (" + metrics["reference"] + ")", "plasma"),
        (axes[0, 1], g.teff, g.logg, g.log_lum, r"model $\log L_G / L_\odot$", "model: Teff, g_fakemag from (logg, [M/H])", "plasma"),
        (axes[1, 0], g.teff, g.logg, g.m_h, "input [M/H]", "model, coloured by input [M/H]", "coolwarm"),
        (axes[1, 1], g.teff, g.logg, g.teff_err, r"predicted $\sigma_{T_\mathrm{eff}}$ [K]", "model, Teff uncertainty", "viridis"),
    )
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


# -- g, h, i ---------------------------------------------------------------------------------------
def colours_fig(tables, metrics):
    plt = _plt()
    p = tables["predictions"]
    fig, ax = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    for a, t in zip(ax, ("bprp", "jk")):
        _one_to_one(
            a,
            p[f"ref_{t}"].to_numpy(),
            p[t].to_numpy(),
            p[f"{t}_err"].to_numpy(),
            "predicted $\\sigma$",
            fig=fig,
            text=_stats_text(metrics["targets"][t]),
        )
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
        _one_to_one(
            axes[0, j],
            t.ref_rp0.to_numpy(),
            t.rp0.to_numpy(),
            t.rp0_err.to_numpy(),
            "predicted $\\sigma$",
            fig=fig,
            text=_stats_text(m["model"]),
        )
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
