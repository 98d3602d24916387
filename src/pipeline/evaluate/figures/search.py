"""Figures of the contrastive star search (appendix C)."""

from __future__ import annotations

from .common import LABEL, _plt


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
