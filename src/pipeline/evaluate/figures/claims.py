"""The findings at a glance: a forest plot of every claim against its line (drawn from claims.csv alone).

One row per claim, grouped by paper and figure (top to bottom in the registry's order): our value
with its 95% interval as a point and bar, coloured by verdict; the line it must clear (a vertical
tick) or the band it must lie in (shaded); the paper's own value as a diamond where it is on the same
scale (a ratio: "0.93x", or "A vs B" for an ordering of two answers); with the findings of the seeds
and the confirmation sky (``findings.csv``), the confirmation sky's value as a hollow square and the
seeds' spread as a thin bar. Positive numbers (ratios, scatters, rates) share a log axis; a claim
whose number can be negative (Fig. 12's attention switch, weight differences against 0) is drawn in
a linear panel of its own below.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .common import _plt

COLOURS = {  # verdict -> colour (colour-blind safe: blue, vermillion, grey, orange)
    "reproduced": "#0072B2",
    "not reproduced": "#D55E00",
    "inconclusive": "#999999",
    "mixed": "#E69F00",
    "unconfirmed": "#999999",
    "not run": "#DDDDDD",
}
CAPTION = (
    "Every claim of the papers judged on this run: our value (point) with its 95% bootstrap interval "
    "(bar), coloured by verdict; the line it must clear (tick) or the band it must lie in (shaded); the "
    "paper's own value (diamond) where it is on the same scale; ratios on a log axis."
)


def paper_number(paper_value: str) -> float:
    """The paper's value on the ratio scale, when its text gives one: '0.93x' -> 0.93, 'RMSE 0.232 vs
    0.510' -> 0.455 (an ordering of two answers: their ratio); NaN otherwise."""
    text = str(paper_value)
    m = re.search(r"(\d+(?:\.\d+)?)x\b", text)
    if m:
        return float(m.group(1))
    m = re.search(r"(\d+(?:\.\d+)?)\s*[A-Za-z]*\s+vs\s+(\d+(?:\.\d+)?)", text)
    if m and float(m.group(2)) > 0:
        return float(m.group(1)) / float(m.group(2))
    return math.nan


def forest_rows(claims: pd.DataFrame) -> pd.DataFrame:
    """The plotted rows, one per claim in the table's order: label, group (paper and figure), value,
    lo, hi, line_lo, line_hi, side, second, the verdict to colour by (a findings table's ``verdict``
    column is the three-way finding, a claims table's the run's), the paper's number, and whether
    the row goes to the log panel (every number positive)."""
    c = claims.copy()
    if "default" in c:  # a findings table (findings.csv): the default sky's value, the finding's colour
        c = c.rename(columns={"default": "value", "default_lo": "lo", "default_hi": "hi"})
    for col in ("side", "line_lo", "line_hi", "second", "second_lo", "second_hi", "confirm", "seed_std"):
        if col not in c:
            c[col] = np.nan if col != "side" else ""
    c["group"] = c.paper.astype(str) + " " + c["where"].astype(str)
    c["paper_number"] = [paper_number(v) if s != "" else math.nan for v, s in zip(c.paper_value, c.side.fillna(""))]
    nums = c[["value", "lo", "hi", "line_lo", "line_hi", "second"]].to_numpy(float)
    with np.errstate(invalid="ignore"):
        c["log"] = ~(np.nan_to_num(nums, nan=1.0) <= 0).any(axis=1)
    c["label"] = [_short(s) for s in c.statement]
    # a claim's own number against a line in its own units (a scatter, an RMS, a sigma): drawn over
    # its line, so that 1 is the line on the shared ratio axis
    centre = (c.line_lo + c.line_hi) / 2
    own = c.test.astype(str).str.startswith("value") & ~c.test.astype(str).str.contains("paired ratio")
    scale = (own & c.side.isin(["below", "above"]) & c.log & (centre > 0) & (centre != 1)).to_numpy()
    for col in ("value", "lo", "hi", "line_lo", "line_hi", "confirm", "seed_std"):
        c.loc[scale, col] = c.loc[scale, col] / centre[scale]
    c.loc[scale, "label"] = [f"{t} (over its line)" for t in c.loc[scale, "label"]]
    c["over_line"] = scale
    return c.reset_index(drop=True)


def _short(statement: str, width: int = 100) -> str:
    s = str(statement)
    return s if len(s) <= width else s[: width - 1].rstrip() + "\u2026"


def forest_plot(claims: pd.DataFrame, dpi: int = 110):
    """The figure (matplotlib Figure) of ``claims`` (a claims.csv or findings.csv table)."""
    plt = _plt()
    rows = forest_rows(claims)
    log_rows, lin_rows = rows[rows.log], rows[~rows.log]
    heights = [max(len(log_rows), 1), max(len(lin_rows), 1) + 1.5]
    fig, axes = plt.subplots(
        2 if len(lin_rows) else 1,
        1,
        figsize=(14, 0.26 * (len(rows) + 6)),
        gridspec_kw={"height_ratios": heights if len(lin_rows) else [1]},
        squeeze=False,
    )
    _panel(axes[0, 0], log_rows, log=True)
    if len(lin_rows):
        _panel(axes[1, 0], lin_rows, log=False)
    handles = [plt.Line2D([], [], marker="o", ls="", color=COLOURS[v], label=v) for v in _verdicts(rows)]
    handles.append(plt.Line2D([], [], marker="D", ls="", mfc="white", mec="k", label="paper"))
    if rows.confirm.notna().any():
        handles.append(plt.Line2D([], [], marker="s", ls="", mfc="none", mec="k", label="confirmation sky"))
    axes[0, 0].legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(handles), frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def _verdicts(rows):
    seen = list(dict.fromkeys(rows.verdict))
    return [v for v in COLOURS if v in seen]


def _panel(ax, rows, log: bool):
    n = len(rows)
    y = np.arange(n)[::-1].astype(float)
    for yi, r in zip(y, rows.itertuples()):
        colour = COLOURS.get(r.verdict, "k")
        if math.isfinite(r.line_lo) and math.isfinite(r.line_hi):
            if r.side == "inside" or r.line_hi > r.line_lo:
                ax.fill_betweenx([yi - 0.4, yi + 0.4], r.line_lo, r.line_hi, color="0.85", lw=0, zorder=0)
            if r.side in ("below", "above"):
                edge = r.line_hi if r.side == "below" else r.line_lo
                ax.plot([edge, edge], [yi - 0.4, yi + 0.4], color="k", lw=1.2, zorder=1)
        if math.isfinite(r.seed_std) and math.isfinite(r.value):  # the seeds' spread (clipped to the axis)
            ax.plot([r.value - r.seed_std, r.value + r.seed_std], [yi + 0.25] * 2, color=colour, lw=0.8, alpha=0.6)
        if math.isfinite(r.lo) and math.isfinite(r.hi):
            ax.plot([r.lo, r.hi], [yi, yi], color=colour, lw=2.2, zorder=2)
        if math.isfinite(r.value):
            ax.plot(r.value, yi, "o", color=colour, ms=5, zorder=3)
        if math.isfinite(r.second):
            if math.isfinite(r.second_lo) and math.isfinite(r.second_hi):
                ax.plot([r.second_lo, r.second_hi], [yi - 0.22] * 2, color=colour, lw=1.4, zorder=2)
            ax.plot(r.second, yi - 0.22, "o", mfc="white", mec=colour, ms=4, zorder=3)
        if math.isfinite(r.confirm):
            ax.plot(r.confirm, yi - 0.25, "s", mfc="none", mec="k", ms=4, zorder=3)
        if log and math.isfinite(r.paper_number):
            ax.plot(r.paper_number, yi, "D", mfc="white", mec="k", ms=4.5, zorder=3)
    shown = rows[["value", "lo", "hi", "line_lo", "line_hi", "second", "confirm"] + (["paper_number"] if log else [])].to_numpy(float)
    shown = shown[np.isfinite(shown) & ((shown > 0) if log else True)]
    if shown.size:
        lo, hi = shown.min(), shown.max()
        ax.set_xlim(*((lo / 1.5, hi * 1.5) if log else (lo - 0.1 * (hi - lo + 1e-9), hi + 0.1 * (hi - lo + 1e-9))))
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r.label}  [{r.group}]" for r in rows.itertuples()], fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    for yi, (a, b) in zip(y[1:], zip(rows.group.iloc[:-1], rows.group.iloc[1:])):
        if a != b:
            ax.axhline(yi + 0.5, color="0.8", lw=0.6)
    if log:
        ax.set_xscale("log")
        ax.axvline(1.0, color="0.6", lw=0.6, ls=":")
        ax.set_xlabel("ours: a ratio (to the expert, or of two answers), or the claim's number, with its line")
    else:
        ax.axvline(0.0, color="0.6", lw=0.6, ls=":")
        ax.set_xlabel("ours: a difference (the first side: point; the second side: hollow point), line at 0")
    ax.grid(axis="x", color="0.93", lw=0.5)


def draw_forest(claims: pd.DataFrame, out_png, dpi: int = 110) -> None:
    """Write the forest plot of ``claims`` to ``out_png``, whole or not at all."""
    from ...io.atomic import atomic_path

    fig = forest_plot(claims, dpi)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    _plt().close(fig)


SYMBOLS = {
    "reproduced": "\u2714",
    "not reproduced": "\u2718",
    "inconclusive": "?",
    "mixed": "\u00b1",
    "unconfirmed": "?",
    "not run": "\u2013",
}
TABLE_COLUMNS = ("paper", "where", "statement", "paper_value", "ours", "verdict")  # what a reader needs; the rest: claims.csv


def claims_html(claims: pd.DataFrame, title: str = "The papers' claims judged on this run", standalone: bool = True, figure=None) -> str:
    """The claims as a person reads them: paper, where, claim, the paper's value, ours with its
    interval, the verdict as a coloured mark and word; the tests and summary rows (internal keys) in
    a second table below. Fixed layout and wrapped text: no sideways scrolling at 1,400 px. With
    ``standalone`` a whole page, else a fragment (its styles scoped to it) for the report's front page;
    ``figure``: the forest plot's PNG, embedded above the table (the report stays one file). On the
    front page the report centres its content, which puts a long page's top out of reach: the
    fragment's styles start it at the top and give it the page's width."""
    import base64
    from html import escape

    def verdict_cell(v):
        colour = COLOURS.get(v, "#000")
        return f'<td class="v"><span class="mark" style="background:{colour}">{SYMBOLS.get(v, "")}</span> {escape(str(v))}</td>'

    head = ["paper", "where", "claim", "paper's value", "ours (95% interval)", "verdict"]
    rows = []
    for r in claims.itertuples():
        cells = [f"<td>{escape(str(getattr(r, c)))}</td>" for c in TABLE_COLUMNS[:-1]]
        rows.append("<tr>" + "".join(cells) + verdict_cell(r.verdict) + "</tr>")
    counts = claims.verdict.value_counts()
    tally = ", ".join(f"{counts[v]} {v}" for v in [*COLOURS, *sorted(set(counts.index) - set(COLOURS))] if v in counts)
    keys = [
        f'<tr><td><span class="key">{escape(str(r.claim))}</span></td><td>{escape(str(r.test))}</td>'
        f"<td>{escape(str(getattr(r, 'basis', '')))}</td>"
        f'<td><span class="key">{escape(str(r.rows))}</span></td></tr>'
        for r in claims.itertuples()
    ]
    style = """
.claims-page { font-family: system-ui, sans-serif; font-size: 14px; max-width: 1340px; }
.claims-page table { border-collapse: collapse; width: 100%; table-layout: fixed; margin-bottom: 24px; }
.claims-page th, .claims-page td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
.claims-page th { background: #f3f3f3; }
.claims-page col.paper { width: 7%; } .claims-page col.where { width: 10%; } .claims-page col.claim { width: 41%; }
.claims-page col.pv { width: 14%; } .claims-page col.ours { width: 16%; } .claims-page col.v { width: 12%; }
.claims-page col.k1 { width: 20%; } .claims-page col.k2 { width: 30%; } .claims-page col.k3 { width: 25%; }
.claims-page col.k4 { width: 25%; }
.claims-page .mark { display: inline-block; width: 1.3em; text-align: center; color: white; border-radius: 3px; }
.claims-page .key { font-family: monospace; font-size: 12px; }
.prose:has(.claims-page) { max-width: none; }
.overflow-auto:has(.claims-page) { align-items: flex-start; }
"""
    body = [
        f'<div class="claims-page"><style>{style}</style>',
        f"<h3>{escape(title)}</h3><p>{escape(tally)} of {len(claims)} claims.</p>",
        *(
            [
                f'<img alt="every claim against its line" style="width: 100%" src="data:image/png;base64,{base64.b64encode(Path(figure).read_bytes()).decode()}">',
                f"<p><em>{escape(CAPTION)}</em></p>",
            ]
            if figure is not None
            else []
        ),
        '<table id="claims"><colgroup><col class="paper"><col class="where"><col class="claim"><col class="pv">'
        '<col class="ours"><col class="v"></colgroup>',
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>",
        *rows,
        "</tbody></table>",
        "<h4>Each claim's test and the summary rows it reads</h4>",
        '<table id="tests"><colgroup><col class="k1"><col class="k2"><col class="k3"><col class="k4"></colgroup>',
        "<thead><tr><th>claim</th><th>test</th><th>basis</th><th>rows of summary.csv</th></tr></thead><tbody>",
        *keys,
        "</tbody></table></div>",
    ]
    if not standalone:
        return "\n".join(body)
    return "\n".join(["<!DOCTYPE html>", '<html><head><meta charset="utf-8"><title>claims</title></head><body>', *body, "</body></html>"])


def write_claims_page(claims: pd.DataFrame, out_html, standalone: bool = True, figure=None) -> None:
    """Write ``claims_html`` to ``out_html`` (a page, or the front page's fragment), whole or not at all."""
    from ...io.atomic import atomic_path

    with atomic_path(out_html) as tmp:
        Path(tmp).write_text(claims_html(claims, standalone=standalone, figure=figure))
