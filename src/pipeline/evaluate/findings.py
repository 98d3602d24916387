"""The findings: each claim judged three ways, and counted only when the three agree.

A claim's verdict on one run (``claims.judge_claims``) says how well the test stars pin one trained
model on one mock sky down. A referee asks two more things: would another training say the same,
and would another sky? So a claim is judged on

- the **default sky**: the default run (``results/eval/claims.csv``);
- the **seeds**: the default chain retrained with each of ``claims.seeds``, each training judged by
  its own interval (``results/eval/seeds.csv``; ``seeds_verdict``: reproduced only when every seed's is);
- the **confirmation sky**: the default chain on a second mock whose every data seed differs
  (``configs/confirm.yaml``; its own results folder),

and it is **reproduced** only when all three say reproduced, **not reproduced** when all three say
not reproduced, **mixed** otherwise; **unconfirmed** while the seeds or the confirmation sky have not
been run (the default sky's verdict is then all there is, and the tally says so).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..io.atomic import atomic_path
from .claim_changes import CHANGED_TESTS
from .claims import LINE_COLUMNS
from .verdicts import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, seeds_verdict  # noqa: F401 (the seeds' part of a finding)

MIXED, UNCONFIRMED = "mixed", "unconfirmed"
CONFIRM_FOLDER = "confirm"  # the confirmation sky's results: <results>/confirm (configs/confirm.yaml's paths.results)
FINDINGS = (REPRODUCED, NOT_REPRODUCED, MIXED, UNCONFIRMED, NOT_RUN)


def overall_verdict(default: str, seeds: str | None, confirm: str | None) -> str:
    """The finding: reproduced when the default sky, the seeds and the confirmation sky all say so,
    not reproduced when all three say so, mixed when they differ (or any is inconclusive),
    unconfirmed when the seeds or the confirmation sky are missing, not run when the default is."""
    if default == NOT_RUN:
        return NOT_RUN
    if not seeds or not confirm or NOT_RUN in (seeds, confirm):
        return UNCONFIRMED
    three = (default, seeds, confirm)
    if all(v == REPRODUCED for v in three):
        return REPRODUCED
    if all(v == NOT_REPRODUCED for v in three):
        return NOT_REPRODUCED
    return MIXED


FINDING_COLUMNS = [
    *("claim", "paper", "where", "statement", "paper_value", "test", "basis"),
    *("default", "default_lo", "default_hi", "default_ours", "default_verdict"),
    *("seeds_verdicts", "seed_std", "n_reproduced", "n_seeds", "seeds_verdict", "confirm", "confirm_ours", "confirm_verdict", "verdict"),
    *LINE_COLUMNS,  # the default sky's line of each claim (the forest plot's)
]


def findings_table(claims: pd.DataFrame, seeds: pd.DataFrame | None = None, confirm: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim of the default sky's ``claims`` (claims.csv): its value and verdict, the
    seeds' (seeds.csv: per-seed values, spread, verdict over seeds), the confirmation sky's
    (its claims.csv) and the overall ``verdict``."""
    by_seed = {} if seeds is None else {r.claim: r for r in seeds.itertuples()}
    by_sky = {} if confirm is None else {r.claim: r for r in confirm.itertuples()}
    seed_cols = [k for k in (seeds.columns if seeds is not None else ()) if k.startswith("seed") and k.endswith("_verdict")]
    seed_cols = sorted((k for k in seed_cols if k != "seeds_verdict"), key=lambda k: int(k[4:-8]) if k[4:-8].isdigit() else 0)
    rows = []
    for r in claims.itertuples():
        s, c = by_seed.get(r.claim), by_sky.get(r.claim)
        row = {
            "claim": r.claim,
            "paper": r.paper,
            "where": r.where,
            "statement": r.statement,
            "paper_value": r.paper_value,
            "test": r.test,
            "basis": getattr(r, "basis", ""),
            "default": r.value,
            "default_lo": r.lo,
            "default_hi": r.hi,
            "default_ours": r.ours,
            "default_verdict": r.verdict,
            "seeds_verdicts": ", ".join(str(getattr(s, k)) for k in seed_cols) if s is not None else "",
            "seed_std": float(s.seed_std) if s is not None else math.nan,
            "n_reproduced": int(s.n_reproduced) if s is not None else 0,
            "n_seeds": int(s.n_seeds) if s is not None else 0,
            "seeds_verdict": s.seeds_verdict if s is not None else "",
            "confirm": c.value if c is not None else math.nan,
            "confirm_ours": c.ours if c is not None else "",
            "confirm_verdict": c.verdict if c is not None else "",
        }
        row.update({k: getattr(r, k, math.nan) for k in LINE_COLUMNS})
        row["verdict"] = overall_verdict(r.verdict, row["seeds_verdict"], row["confirm_verdict"])
        rows.append(row)
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


def tally(findings: pd.DataFrame) -> str:
    counts = findings.verdict.value_counts()
    return ", ".join(f"{counts.get(v, 0)} {v}" for v in FINDINGS) + f" of {len(findings)} claims."


README_START, README_END = "<!-- claims:start (python -m pipeline claims --readme README.md) -->", "<!-- claims:end -->"
_SHORT = {REPRODUCED: "R", NOT_REPRODUCED: "N", INCONCLUSIVE: "I", NOT_RUN: "-"}


def markdown_table(findings: pd.DataFrame) -> str:
    """The findings in Markdown: paper, where, claim, the paper's value, the test and its basis, the
    default sky's value and verdict, the seeds' verdicts (R / N / I per training), the confirmation
    sky's value and verdict, and the finding; then the tally."""
    head = ["paper", "where", "claim", "paper's value", "test (basis)", "default sky", "seeds", "confirmation sky", "finding"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in findings.itertuples():
        seeds = ""
        if r.seeds_verdict:
            marks = " ".join(_SHORT.get(v, v) for v in str(r.seeds_verdicts).split(", ") if v) if r.seeds_verdicts else ""
            seeds = f"{marks} ({r.n_reproduced} of {r.n_seeds}; std {r.seed_std:.2g})" if math.isfinite(r.seed_std) else marks
        confirm = f"{r.confirm_ours}, {r.confirm_verdict}" if r.confirm_verdict else ""
        finding = f"**{r.verdict}**" if r.verdict == REPRODUCED else r.verdict
        basis = f" ({r.basis})" if isinstance(r.basis, str) and r.basis else ""
        cells = [
            r.paper,
            r.where,
            r.statement,
            r.paper_value,
            f"{r.test}{basis}",
            f"{r.default_ours}, {r.default_verdict}",
            seeds,
            confirm,
            finding,
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    lines += ["", tally(findings)]
    return "\n".join(lines)


def readme_summary(findings: pd.DataFrame, figure: str | None = None) -> str:
    """The README's few lines of findings: the tally, a row per paper, which figures' claims are
    reproduced and which are not (their count in brackets), and the links to the full table
    (docs/findings.md) and, when given, the forest plot of every claim (``figure``, a path)."""
    lines = [f"**{tally(findings)}**", ""]
    lines += ["| paper | claims | " + " | ".join(FINDINGS[:-1]) + " |", "|" + "---|" * (len(FINDINGS) + 1)]
    for paper, group in findings.groupby("paper", sort=False):
        counts = group.verdict.value_counts()
        lines.append(f"| {paper} | {len(group)} | " + " | ".join(str(counts.get(v, 0)) for v in FINDINGS[:-1]) + " |")
    lines.append("")
    for verdict in (REPRODUCED, NOT_REPRODUCED):
        chosen = findings[findings.verdict == verdict]
        if not len(chosen):
            continue
        places = []
        for (paper, where), group in chosen.groupby(["paper", "where"], sort=False):
            places.append(f"{paper} {where}" + (f" ({len(group)})" if len(group) > 1 else ""))
        lines.append(f"- {verdict} on all three: " + "; ".join(places) + ".")
    link = "Every claim with its test, its three judgements and what keeps it out: [docs/findings.md](docs/findings.md)"
    lines += ["", link + (f"; at a glance: [the forest plot]({figure})." if figure else ".")]
    return "\n".join(lines)


def replace_block(text: str, block: str, start: str = README_START, end: str = README_END) -> str:
    """``text`` with the part between ``start`` and ``end`` (the README's claims markers by default)
    replaced by ``block``."""
    if start not in text or end not in text:
        raise ValueError(f"no block between {start!r} and {end!r} to write the table into")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def load_findings(results, confirm_results=None) -> pd.DataFrame:
    """The findings of a results folder: its eval/claims.csv, eval/seeds.csv when the seeds target
    ran, and the confirmation sky's eval/claims.csv (``confirm_results``, by default
    <results>/confirm) when it ran."""
    confirm_results = Path(results) / CONFIRM_FOLDER if confirm_results is None else confirm_results
    folder = Path(results) / "eval"
    path = folder / "claims.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no claims table; run the workflow (make run) first")
    seeds = folder / "seeds.csv"
    confirm = Path(confirm_results) / "eval/claims.csv" if confirm_results else None
    return findings_table(
        pd.read_csv(path),
        pd.read_csv(seeds) if seeds.is_file() else None,
        pd.read_csv(confirm) if confirm is not None and confirm.is_file() else None,
    )


def write_findings(claims_csv, seeds_csv, confirm_csv, out_csv) -> pd.DataFrame:
    """findings.csv from the three claims tables (rule findings)."""
    table = findings_table(pd.read_csv(claims_csv), pd.read_csv(seeds_csv), pd.read_csv(confirm_csv))
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return table


DOC_START, DOC_END = "<!-- findings:start (python -m pipeline claims --doc docs/findings.md) -->", "<!-- findings:end -->"
# in docs/recorded/ (python -m pipeline claims --record): the findings, the run the changed tests are compared
# with, and the scaling target's crossings when it ran
RECORDED_FINDINGS, RECORDED_BEFORE, RECORDED_CROSSINGS = "findings.csv", "claims-fe68ef7.csv", "scaling_crossings.csv"
RECORDED_RUN = "run.json"  # which run the recorded files are: its results folders, the checkout's commit, when
RECORDED_FIGURE = "findings.png"
RECORDED_EXPERIMENTS = "experiments"  # docs/recorded/experiments/<name>.csv: each recipe experiment's claims (claims.experiments)  # the recorded findings' forest plot, linked from the README, docs/findings.md and the model card
FIGURE_LINK = f"docs/recorded/{RECORDED_FIGURE}"  # from the README


def _disagreement(r) -> str:
    """Which of the three judgements keeps a claim from being counted, in words."""
    if r.verdict == UNCONFIRMED:
        missing = [name for name, v in (("the seeds", r.seeds_verdict), ("the confirmation sky", r.confirm_verdict)) if v in ("", NOT_RUN)]
        return f"{' and '.join(missing)} not run"
    parts = [f"default sky {r.default_verdict}", f"seeds {r.seeds_verdicts or r.seeds_verdict}", f"confirmation sky {r.confirm_verdict}"]
    return "; ".join(parts)


def scaling_quantity_of_claims() -> dict[str, str]:
    """{claim: the scaling figure's quantity that measures it} (the same summary row)."""
    from .claims import CLAIMS
    from .variants import SCALING_QUANTITIES

    by_row = {row: label for label, row, _, _ in SCALING_QUANTITIES}
    first = {c.id: c.test.rows()[0] for c in CLAIMS}
    return {cid: by_row[(r.task, r.target, r.metric)] for cid, r in first.items() if (r.task, r.target, r.metric) in by_row}


def findings_doc(
    findings: pd.DataFrame,
    before: pd.DataFrame | None = None,
    crossings: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
    figure: str | None = None,
    run: dict | None = None,
    experiments: dict | None = None,
) -> str:
    """docs/findings.md's generated block: the tally, the claims that are not reproduced on all three
    with what disagrees (and, where the scaling target ran, what its curve says: ``crossings``,
    scaling_crossings.csv), the tests changed since the last judged run with their verdicts
    before (``before``: that run's claims) and after, and every model's validation figures
    (``validation``: ``validation_table``), which a setting is chosen by."""
    curve = {}
    if crossings is not None:
        small = crossings[crossings.preset == "small"].set_index("quantity")
        curve = {cid: small.verdict.get(q, "") for cid, q in scaling_quantity_of_claims().items()}
    lines = [f"**{tally(findings)}**", ""]
    if run:
        lines += [
            f"*The recorded run: `{run.get('results', '?')}` (and its seeds and confirmation sky), recorded "
            f"{run.get('recorded', '?')} from commit `{run.get('commit', '?')[:12]}`; a test checks this page against it.*",
            "",
        ]
    if figure:
        from .figures.claims import CAPTION

        lines += [f"![every claim against its line]({figure})", "", f"*{CAPTION}*", ""]
    lines += [markdown_table(findings).rsplit("\n\n", 1)[0], ""]
    lines += ["Claims not counted as reproduced, and what keeps each out:", ""]
    lines += ["| claim | where | finding | default sky, seeds, confirmation sky | scaling curve (small) |", "|---|---|---|---|---|"]
    for r in findings[findings.verdict != REPRODUCED].itertuples():
        lines.append(f"| `{r.claim}` | {r.paper} {r.where} | {r.verdict} | {_disagreement(r)} | {curve.get(r.claim, '')} |")
    if before is not None:
        old = {r.claim: r for r in before.itertuples()}
        now = {r.claim: r for r in findings.itertuples()}
        lines += ["", "Tests changed since the last judged run (fe68ef7), each with its reason:", ""]
        lines += ["| claim | why | before | after (default sky) |", "|---|---|---|---|"]
        for new, (was, why) in CHANGED_TESTS.items():
            b, a = old.get(was), now.get(new)
            before_cell = f"{b.ours}, {b.verdict}" if b is not None else "n/a"
            after_cell = f"{a.default_ours}, {a.default_verdict}" if a is not None else "n/a"
            lines.append(f"| `{new}` | {why} | {before_cell} | {after_cell} |")
    if experiments:
        lines += ["", *experiments_table(findings, experiments)]
    if validation is not None and len(validation):
        cols = [
            c
            for c in ("model", "lr", "epochs", "val_loss_last", "val_loss_best", "teff_scatter", "logg_scatter", "m_h_scatter")
            if c in validation
        ]
        lines += [
            "",
            "The run's models on validation stars (what a setting is chosen by; the held-out check's scatter on the validation split):",
            "",
        ]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in validation[cols].itertuples(index=False):
            lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)


RECORDED_VALIDATION = "validation.csv"  # docs/recorded/: every trained model's figures on validation stars


def validation_table(results) -> pd.DataFrame:
    """Every model of a run's results/models/ and results/spectrafm/ with its figures on validation stars, the ones a
    setting is chosen by: the last and best validation loss (history.csv) and the held-out check's
    robust scatter of Teff, logg and [M/H] (heldout.json, the validation split), with the settings
    it was trained with (config.json's train block: lr, epochs)."""
    import json

    rows = []
    folders = [*(Path(results) / "models").glob("*"), *(Path(results) / "spectrafm").glob("*")]
    for d in sorted(p for p in folders if (p / "history.csv").is_file()):
        hist = pd.read_csv(d / "history.csv")
        row = {
            "model": d.name if d.parent.name == "models" else f"spectrafm/{d.name}",
            "epochs": len(hist),
            "val_loss_last": float(hist.val_loss.iloc[-1]),
            "val_loss_best": float(hist.val_loss.min()),
        }
        meta = json.loads((d / "config.json").read_text()) if (d / "config.json").is_file() else {}
        train = meta.get("train") or {}
        row.update({k: train.get(k) for k in ("preset", "lr", "epochs_per_cycle", "seed")})
        if (d / "heldout.json").is_file():
            check = json.loads((d / "heldout.json").read_text())
            row["check_split"] = check.get("split", "test")
            row.update({f"{t}_scatter": v["robust_scatter_vs_labels"] for t, v in check["targets"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def record(table: pd.DataFrame, results, recorded, commit: str) -> None:
    """Record a run's findings in ``recorded`` (docs/recorded): findings.csv, its forest plot, every
    model's validation figures, the scaling target's crossings when it ran, and which run it was
    (run.json: the results folder, the checkout's commit, the date). Each file whole or not at all."""
    import datetime as dt
    import json

    from .figures.claims import draw_forest

    recorded = Path(recorded)
    recorded.mkdir(parents=True, exist_ok=True)
    with atomic_path(recorded / RECORDED_FINDINGS) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(recorded / RECORDED_VALIDATION) as tmp:
        validation_table(results).to_csv(tmp, index=False, float_format="%.6g")
    run = {"results": str(results), "commit": commit, "recorded": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")}
    with atomic_path(recorded / RECORDED_RUN) as tmp:
        Path(tmp).write_text(json.dumps(run, indent=1) + "\n")
    draw_forest(table, recorded / RECORDED_FIGURE)
    for claims_csv in sorted(Path(results).glob("claims/exp_*/claims.csv")):
        (recorded / RECORDED_EXPERIMENTS).mkdir(exist_ok=True)
        with atomic_path(recorded / RECORDED_EXPERIMENTS / f"{claims_csv.parent.name[4:]}.csv") as tmp:
            Path(tmp).write_bytes(claims_csv.read_bytes())
    crossings = Path(results) / "eval" / RECORDED_CROSSINGS
    if crossings.is_file():
        with atomic_path(recorded / RECORDED_CROSSINGS) as tmp:
            Path(tmp).write_bytes(crossings.read_bytes())


def generated_blocks(table: pd.DataFrame, folder) -> tuple[str, str]:
    """(the README's block, docs/findings.md's block) of ``table``, with what the recorded folder
    holds beside it: the figure, the last judged run's claims, the scaling crossings, the validation
    figures and which run it was."""
    import json

    folder = Path(folder)

    def csv(name):
        return pd.read_csv(folder / name) if (folder / name).is_file() else None

    has_figure = (folder / RECORDED_FIGURE).is_file()
    run = json.loads((folder / RECORDED_RUN).read_text()) if (folder / RECORDED_RUN).is_file() else None
    readme = readme_summary(table, FIGURE_LINK if has_figure else None)
    doc = findings_doc(
        table,
        csv(RECORDED_BEFORE),
        csv(RECORDED_CROSSINGS),
        csv(RECORDED_VALIDATION),
        f"recorded/{RECORDED_FIGURE}" if has_figure else None,
        run,
        {p.stem: pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in sorted((folder / RECORDED_EXPERIMENTS).glob("*.csv"))},
    )
    return readme, doc


def experiments_table(findings: pd.DataFrame, experiments: dict) -> list[str]:
    """Markdown lines: each claim that a recipe experiment (claims.experiments: a SpectraFM rule's
    alternative, a learning rate) judges otherwise than the default sky, or by another value, beside it."""
    head = ["claim", "default sky", *experiments]
    lines = ["Recipe experiments (`snakemake experiments`; SpectraFM's sensitivity rows among them), each claim they move:", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by_name = {name: t.set_index("claim") for name, t in experiments.items()}
    for r in findings.itertuples():
        cells = []
        for t in by_name.values():
            e = t.loc[r.claim] if r.claim in t.index else None
            cells.append("" if e is None or e.verdict == NOT_RUN else f"{e.ours}, {e.verdict}")
        if any(c and c != f"{r.default_ours}, {r.default_verdict}" for c in cells):
            lines.append(f"| `{r.claim}` | {r.default_ours}, {r.default_verdict} | " + " | ".join(cells) + " |")
    return lines
