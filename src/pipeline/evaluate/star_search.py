"""The contrastive star search of appendix C, scored on the test split (database = its XP spectra).

Top-N recovery: each database star is queried with its own parameters and colours (no BP-RP) and
counts as recovered when its own spectrum is among the N most similar; the random baseline is
N / (database size). Partial queries (e.g. Teff = 4700 K, logg = 2.5) return the top-N stars,
whose reference values (the mock's truth, else the labels) should lie near the query: the median
distance is compared with that of the whole database.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .data import reference_kind, summary_row
from .intervals import PerStar, mean

log = logging.getLogger(__name__)
RECOVERY_N = (1, 10, 100, 1000)


def star_search(searcher, df, cfg, experts_dir=None):
    db = searcher.database
    d = df.set_index("row").loc[db.row.to_numpy()].reset_index()  # database stars with their truth, same order
    n_db = len(db)
    top = int(cfg.top_n or searcher.cfg.top_n)
    ranks = searcher.ranks_of_own_spectra(d[list(searcher.cfg.query_tokens)])
    ns = sorted({*RECOVERY_N, top})
    recovery = {f"top_{n}": {"rate": float(np.mean(ranks < n)), "random": min(1.0, n / n_db)} for n in ns}
    metrics = {
        "reference": reference_kind(d),
        "n_database": n_db,
        "query_tokens": list(searcher.cfg.query_tokens),
        "spectra_tokens": f"{len(searcher.cfg.spectra_tokens)} tokens ({searcher.cfg.spectra_tokens[0]}...)",
        "temperature": searcher.cfg.temperature,
        "recovery": recovery,
        "median_rank": float(np.median(ranks)),
        "paper": {"top_100_rate": 0.12, "random": 0.004, "n_database": 25000},
    }
    log.info(
        "search: top-%d recovery %.3f (random %.4f) over %d test spectra",
        top,
        recovery[f"top_{top}"]["rate"],
        recovery[f"top_{top}"]["random"],
        n_db,
    )
    curve_n = np.unique(np.geomspace(1, n_db, 60).astype(int))
    curve = pd.DataFrame({"n": curve_n, "rate": [float(np.mean(ranks < n)) for n in curve_n], "random": curve_n / n_db})
    hits, queries = [], []
    for k, q in enumerate(cfg.queries or searcher.cfg.queries):
        q = {t: float(v) for t, v in q.items()}
        res = searcher.query(q, top)
        found = d.set_index("row").loc[res.row.to_numpy()]
        entry = {"query": q, "n": int(len(res))}
        for t, v in q.items():
            ref_all = _ref(d, t)
            ref_top = _ref(found, t)
            entry[t] = {
                "median_abs_distance_top": float(np.nanmedian(np.abs(ref_top - v))),
                "median_abs_distance_database": float(np.nanmedian(np.abs(ref_all - v))),
                "median_value_top": float(np.nanmedian(ref_top)),
            }
        queries.append(entry)
        hits.append(
            pd.DataFrame(
                {
                    "query": k,
                    "row": res.row.to_numpy(),
                    "similarity": res.similarity.to_numpy(),
                    **{f"ref_{t}": _ref(found, t) for t in ("teff", "logg", "m_h", "jh")},
                }
            )
        )
    metrics["queries"] = queries
    metrics["summary"] = [
        summary_row("search", "own spectrum", f"top-{top} recovery rate", PerStar((ranks < top).astype(float), mean)),
        summary_row("search", "own spectrum", f"top-{top} random baseline", recovery[f"top_{top}"]["random"]),
    ]
    for e in queries:
        for t in e["query"]:
            metrics["summary"].append(
                summary_row("search", t, f"median abs({t} - query) of top {top} ({_fmt(e['query'])})", e[t]["median_abs_distance_top"])
            )
    database = pd.DataFrame({"row": d.row, "rank": ranks, **{f"ref_{t}": _ref(d, t) for t in ("teff", "logg", "m_h", "jh")}})
    return metrics, {"curve": curve, "hits": pd.concat(hits, ignore_index=True), "database": database}


def _ref(d, token):
    col = f"true_{token}"
    return d[col].to_numpy(float) if col in d else d[token].to_numpy(float)


def _fmt(q):
    return ", ".join(f"{k}={v:g}" for k, v in q.items())
