"""Figures of SpectraFM (Koblischke & Bovy 2024): Table 1, the [Fe/H] transfer test (Fig. 4), attention (Fig. 5)."""

from __future__ import annotations

import numpy as np

from .common import _one_to_one, _plt

# -- SpectraFM (Koblischke & Bovy 2024) -------------------------------------------------------------
SFM_LABEL = {"teff": r"$T_\mathrm{eff}$ [K]", "logg": r"$\log g$", "fe_h": "[Fe/H]", "o_fe": "[O/Fe]", "mg_fe": "[Mg/Fe]"}
SFM_MODELS = {
    "fcnn": "FCNN from scratch (100 iron-rich stars)",
    "pretrain": "pre-trained on synthetic spectra",
    "finetune_real": "fine-tuned on observed spectra (1st half)",
    "finetune_fe": "fine-tuned again on 100 iron-rich stars",
    "finetune_fe_direct": "pre-trained, then 100 iron-rich stars (no 1st fine-tune)",
}


def spectrafm_fe_fig(tables, metrics):
    """Fig. 4: [Fe/H] from the 512-pixel window by each model, iron-poor stars shaded."""
    plt = _plt()
    d, fw = tables["fe_h"], metrics["fe_h_window"]
    shown = {m: title for m, title in SFM_MODELS.items() if m in fw["models"]}
    fig, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 4.6), constrained_layout=True, sharex=True, sharey=True)
    for ax, (m, title) in zip(axes, shown.items()):
        p = d[d.model == m]
        v = fw["models"][m]
        _one_to_one(
            ax,
            p.reference.to_numpy(float),
            p.prediction.to_numpy(float),
            c=p.sigma.to_numpy(float),
            clabel=r"predicted $\sigma$",
            fig=fig,
            text=f"RMSE {v['rmse_all']:.3f} (all)\n{v['rmse_fe_h_poor']:.3f} ([Fe/H] < -1, {fw['n_fe_h_poor']} stars)",
        )
        ax.axvspan(ax.get_xlim()[0], -1.0, color="0.9", zorder=-1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"{metrics['reference']} [Fe/H]")
    axes[0].set_ylabel("predicted [Fe/H]")
    fig.suptitle(f"[Fe/H] from observed pixels {fw['window_aa'][0]:.0f}-{fw['window_aa'][1]:.0f} A", fontsize=10)
    return fig


def spectrafm_table1_fig(tables, metrics):
    """Table 1 as one-to-one panels: each label from observed spectra, pre-trained vs fine-tuned, and the Cannon (the expert) where it ran."""
    plt = _plt()
    d = tables["table1"]
    d = d[d.selected.astype(bool)]
    rows = {(r["model"], r["spectra"], r["label"]): r for r in metrics["table1"]["rows"]}
    labels = list(dict.fromkeys(d.label))
    runs = [("pretrain", "observed"), ("finetune_real", "observed")] + [("cannon", "observed")] * bool((d.model == "cannon").any())
    fig, axes = plt.subplots(len(runs), len(labels), figsize=(3.8 * len(labels), 3.75 * len(runs)), constrained_layout=True, squeeze=False)
    for i, (m, kind) in enumerate(runs):
        for j, label in enumerate(labels):
            p = d[(d.model == m) & (d.spectra == kind) & (d.label == label)]
            r = rows[(m, kind, label)]
            _one_to_one(
                axes[i, j],
                p.reference.to_numpy(float),
                p.prediction.to_numpy(float),
                text=f"scatter {r['scatter']:.3g} (paper{' AstroNN' if m == 'cannon' else ''} {r['paper']:.3g})\nbias {r['bias']:.2g}",
            )
            axes[i, j].set_title(SFM_MODELS.get(m, "the Cannon (expert; whole observed spectrum)"), fontsize=8)
            axes[i, j].set_xlabel(f"{metrics['reference']} {SFM_LABEL.get(label, label)}")
    for i in range(len(runs)):
        axes[i, 0].set_ylabel("predicted")
    rng = metrics["table1"]["range_aa"]
    fig.suptitle(
        f"observed spectra {rng[0]:.0f}-{rng[1]:.0f} A, test stars with {metrics['table1']['logg_range'][0]} < logg < "
        f"{metrics['table1']['logg_range'][1]}",
        fontsize=10,
    )
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
            ax.axvline(
                ln.wavelength_aa, color=colours.get(ln.element, "0.5"), lw=1.2 if real else 0.5, alpha=0.8 if real else 0.35, zorder=-1
            )
        ax.set_ylabel("attention / uniform", fontsize=8)
        ax.set_title(
            f"request {SFM_LABEL.get(label, label)}: {100 * s['top_fraction_near_lines']:.0f}% of the top-{s['top_k']} pixels "
            f"within {s['tolerance_aa']:g} A of {s['element']} lines ({100 * s['random_fraction_near_lines']:.1f}% of all pixels)",
            fontsize=9,
        )
    handles = [plt.Line2D([], [], color=c, label=el) for el, c in colours.items()]
    axes[0, 0].legend(handles=handles, fontsize=7, ncol=5, loc="upper right")
    axes[-1, 0].set_xlabel("wavelength [A, vacuum]")
    return fig
