"""The base model's findings at the claims budget, judged three ways (issue 45's third deliverable).

The claims budget is `configs/claims.yaml`'s: one cosine cycle of 96 epochs, four times the default's
star-samples (the scaling target's largest `small` point). This script judges the base model's claims
there as `make findings` judges the default run's: trained with seeds 0, 1 and 2 on the default sky
and with the default seed on the confirmation sky, each evaluated and judged by the workflow as a
recipe experiment (`benchmarks/claims_budget.yaml`), then counted only where all three agree:

    .venv/bin/snakemake --cores all results/claims/exp_e96_seed{0,1,2}/claims.csv --configfile benchmarks/claims_budget.yaml
    .venv/bin/snakemake --cores all results/confirm/claims/exp_e96_seed0/claims.csv --configfile configs/confirm.yaml benchmarks/claims_budget.yaml
    .venv/bin/python benchmarks/claims_budget.py --results results --record docs/recorded/claims-budget --doc docs/findings.md

(four 96-epoch trainings, ~22 min each on 2 cores). SpectraFM's claims are not the base model's and are
left out (the claims preset also doubles SpectraFM's epochs: `make findings PRESET=configs/claims.yaml`
judges everything at once, several hours on 2 cores). Writes ``findings.csv`` and ``seeds.csv`` into
``--record`` (with run.json: the results folder, the commit of the checkout holding it, the date) and the two tables into ``--doc``'s claims-budget block; ends with one line of the
issue's measures (the model / expert ratios and the identity over the seeds and the confirmation sky).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pipeline.evaluate import findings as F  # noqa: E402
from pipeline.evaluate.variants import seed_spread  # noqa: E402
from pipeline.evaluate.verdicts import NOT_RUN  # noqa: E402
from pipeline.io.atomic import atomic_path  # noqa: E402
from pipeline.workflow.tracking import git_commit  # noqa: E402

SEEDS = (0, 1, 2)
VARIANT = "exp_e96_seed{}"  # benchmarks/claims_budget.yaml's experiments
# issue 45's measures: task a's three ratios, the rp0 experts' three, the identity, the distance and E(B-V)
MEASURES = (
    *("a_teff_vs_xgboost", "a_logg_vs_xgboost", "a_m_h_vs_xgboost"),
    *("h_rp0_params", "h_rp0_params_2mass", "h_rp0_params_2mass_bprp"),
    *("a_teff_identity", "b_distance", "b_ebv"),
)
START = "<!-- claims-budget:start (python benchmarks/claims_budget.py --doc docs/findings.md) -->"
END = "<!-- claims-budget:end -->"


def claims_tables(results: Path) -> tuple[dict, pd.DataFrame]:
    """({seed: the default sky's claims table}, the confirmation sky's), failing with the target to run."""

    def read(path: Path) -> pd.DataFrame:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not evaluated yet; run the snakemake targets in {__file__}'s docstring")
        return pd.read_csv(path)

    by_seed = {s: read(results / "claims" / VARIANT.format(s) / "claims.csv") for s in SEEDS}
    confirm = read(results / F.CONFIRM_FOLDER / "claims" / VARIANT.format(SEEDS[0]) / "claims.csv")
    return by_seed, confirm


def budget_findings(by_seed: dict, confirm: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the three-way findings of the claims the base model's evaluation runs, the seeds' spread):
    seed 0 is the default sky's judgement, as in the default run."""
    seeds = seed_spread(by_seed)
    table = F.findings_table(by_seed[SEEDS[0]], seeds, confirm)
    return table[table.default_verdict != NOT_RUN].reset_index(drop=True), seeds


def measures_cells(seeds: pd.DataFrame, findings: pd.DataFrame) -> pd.DataFrame:
    """Issue 45's measures: one row per claim, each seed's and the confirmation sky's value with its
    interval and verdict (``seed<N>`` and ``confirm`` columns of text), from the seeds' spread and the
    findings (as computed, or as recorded: the doc's block is rebuilt from the record the same way)."""
    by_claim, sky = seeds.set_index("claim"), findings.set_index("claim")
    rows = []
    for claim in MEASURES:
        row = {"claim": claim}
        for s in SEEDS:
            row[f"seed{s}"] = (
                f"{by_claim.at[claim, f'seed{s}_ours']}, {by_claim.at[claim, f'seed{s}_verdict']}" if claim in by_claim.index else ""
            )
        row["confirm"] = f"{sky.at[claim, 'confirm_ours']}, {sky.at[claim, 'confirm_verdict']}" if claim in sky.index else ""
        rows.append(row)
    return pd.DataFrame(rows)


def measures_table(cells: pd.DataFrame) -> str:
    """Markdown of ``measures_cells``."""
    seeds = [c for c in cells.columns if c.startswith("seed")]
    head = ["claim", *(f"seed {c[4:]}" for c in seeds), "confirmation sky"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in cells.itertuples(index=False):
        lines.append(f"| `{r.claim}` | " + " | ".join(getattr(r, c) for c in [*seeds, "confirm"]) + " |")
    return "\n".join(lines)


def doc_block(findings: pd.DataFrame, cells: pd.DataFrame) -> str:
    """docs/findings.md's claims-budget block: the three-way table, then issue 45's measures."""
    return "\n\n".join([F.markdown_table(findings), measures_table(cells)])


def recorded_block(folder) -> str:
    """The block from a recorded folder (``--record``'s findings.csv and seeds.csv)."""
    folder = Path(folder)
    findings = pd.read_csv(folder / "findings.csv", keep_default_na=False, na_values=[""])
    seeds = pd.read_csv(folder / "seeds.csv", keep_default_na=False, na_values=[""])
    return doc_block(findings, measures_cells(seeds, findings))


def ratios_line(seeds: pd.DataFrame, findings: pd.DataFrame) -> str:
    by_claim, sky = seeds.set_index("claim"), findings.set_index("claim")
    parts = []
    for claim in MEASURES:
        if claim not in by_claim.index or claim not in sky.index:
            vals = [float("nan")] * (len(SEEDS) + 1)
        else:
            vals = [by_claim.at[claim, f"seed{s}"] for s in SEEDS] + [sky.at[claim, "confirm"]]
        parts.append(f"{claim} " + "/".join(f"{float(v):.3g}" for v in vals))
    return "claims budget (seeds " + ",".join(map(str, SEEDS)) + " / confirmation sky): " + "; ".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="the default run's results folder (its confirmation sky in <results>/confirm)")
    p.add_argument("--record", default=None, help="a folder to write findings.csv and seeds.csv into")
    p.add_argument("--doc", default=None, help="a Markdown file whose claims-budget block gets the tables")
    args = p.parse_args(argv)
    by_seed, confirm = claims_tables(Path(args.results))
    table, seeds = budget_findings(by_seed, confirm)
    if args.record:
        # the commit of the checkout whose workflow wrote the results, read before the record is written
        # (the record's own files are tracked: read after, they would mark every record '+dirty')
        results = Path(args.results).resolve()
        run = {"results": str(results), "commit": git_commit(results.parent)}
        folder = Path(args.record)
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in (("findings.csv", table), ("seeds.csv", seeds)):
            with atomic_path(folder / name) as tmp:
                frame.to_csv(tmp, index=False, float_format="%.6g")
        run["recorded"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        with atomic_path(folder / F.RECORDED_RUN) as tmp:
            Path(tmp).write_text(json.dumps(run, indent=1) + "\n")
    block = doc_block(table, measures_cells(seeds, table))
    if args.doc:
        text = Path(args.doc).read_text()
        with atomic_path(args.doc) as tmp:
            Path(tmp).write_text(F.replace_block(text, block, START, END))
    else:
        print(block)
    print(ratios_line(seeds, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
