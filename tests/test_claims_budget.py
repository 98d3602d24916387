"""benchmarks/claims_budget.py: the base model's claims at the claims budget judged three ways."""

import pandas as pd
import pytest

from conftest import REPO, benchmark_module


@pytest.fixture(scope="module")
def claims_budget():
    return benchmark_module("claims_budget")


def _claims(verdicts: dict, values: dict) -> pd.DataFrame:
    """A claims table (claims.judge_claims's columns) with the given verdicts and values."""
    rows = []
    for claim, verdict in verdicts.items():
        v = values[claim]
        rows.append(
            {
                "claim": claim,
                "paper": "SpectraFM" if claim.startswith("spectrafm") else "LB23",
                "where": "Fig. 4",
                "statement": claim,
                "paper_value": "0.93x",
                "ours": "n/a" if verdict == "not run" else f"{v:.3g} [{v - 0.05:.3g}, {v + 0.05:.3g}]",
                "verdict": verdict,
                "test": "ratio < 1",
                "basis": "the paper's ordering",
                "rows": "",
                "value": float("nan") if verdict == "not run" else v,
                "lo": v - 0.05,
                "hi": v + 0.05,
                "side": "below",
                "line_lo": 1.0,
                "line_hi": 1.0,
                "second": float("nan"),
                "second_lo": float("nan"),
                "second_hi": float("nan"),
            }
        )
    return pd.DataFrame(rows)


def _write(results, seed_verdicts, confirm_verdicts, values):
    for s, verdicts in enumerate(seed_verdicts):
        folder = results / "claims" / f"exp_e96_seed{s}"
        folder.mkdir(parents=True)
        _claims(verdicts, values[s]).to_csv(folder / "claims.csv", index=False)
    folder = results / "confirm" / "claims" / "exp_e96_seed0"
    folder.mkdir(parents=True)
    _claims(confirm_verdicts, values[3]).to_csv(folder / "claims.csv", index=False)


def test_three_way_findings_at_the_claims_budget(claims_budget, tmp_path, capsys):
    r, n, i, off = "reproduced", "not reproduced", "inconclusive", "not run"
    claims = ["a_teff_vs_xgboost", "h_rp0_params_2mass_bprp", "b_ebv", "spectrafm_table1_teff"]
    seeds = [
        dict(zip(claims, [r, n, r, off])),
        dict(zip(claims, [r, n, i, off])),
        dict(zip(claims, [r, n, r, off])),
    ]
    confirm = dict(zip(claims, [r, n, r, off]))
    values = [dict(zip(claims, [0.9 + 0.01 * k, 1.5, 1.0, 0.5])) for k in range(4)]
    _write(tmp_path / "results", seeds, confirm, values)
    doc = tmp_path / "findings.md"
    doc.write_text(f"before\n{claims_budget.START}\nold\n{claims_budget.END}\nafter\n")

    assert claims_budget.main(["--results", str(tmp_path / "results"), "--record", str(tmp_path / "rec"), "--doc", str(doc)]) == 0

    table = pd.read_csv(tmp_path / "rec/findings.csv")
    # SpectraFM's claims are not the base model's: left out, not counted as not run
    assert list(table.claim) == claims[:3]
    assert list(table.verdict) == ["reproduced", "not reproduced", "mixed"]  # b_ebv: one seed inconclusive
    assert (tmp_path / "rec/run.json").is_file()
    spread = pd.read_csv(tmp_path / "rec/seeds.csv").set_index("claim")
    assert spread.loc["a_teff_vs_xgboost", "mean"] == pytest.approx(0.91)  # seeds 0.90, 0.91, 0.92
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert "1 reproduced, 1 not reproduced, 1 mixed, 0 unconfirmed" in text
    assert "| `a_teff_vs_xgboost` | 0.9 [0.85, 0.95], reproduced | 0.91 [0.86, 0.96], reproduced" in text
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("claims budget (seeds 0,1,2 / confirmation sky): a_teff_vs_xgboost 0.9/0.91/0.92/0.93;")


def test_a_record_over_its_own_tracked_files_names_a_clean_commit(claims_budget, tmp_path, monkeypatch):
    """Re-recording rewrites tracked files: the commit is read before they change, not '+dirty' after."""
    import json
    import subprocess

    monkeypatch.delenv("PIPELINE_GIT_COMMIT", raising=False)  # a workflow job's commit, set by an earlier test
    repo = tmp_path / "checkout"
    values = [dict(a_teff_vs_xgboost=0.9 + 0.01 * k) for k in range(4)]
    _write(repo / "results", [dict(a_teff_vs_xgboost="reproduced")] * 3, dict(a_teff_vs_xgboost="reproduced"), values)
    (repo / "rec").mkdir()
    for name in ("findings.csv", "seeds.csv", "run.json"):
        (repo / "rec" / name).write_text("an older record\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "rec"], check=True)
    subprocess.run([*git, "commit", "-qm", "record"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()

    assert claims_budget.main(["--results", str(repo / "results"), "--record", str(repo / "rec")]) == 0
    assert json.loads((repo / "rec/run.json").read_text())["commit"] == head


def test_a_missing_evaluation_names_the_file_and_what_to_run(claims_budget, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"exp_e96_seed0/claims.csv: not evaluated yet"):
        claims_budget.main(["--results", str(tmp_path)])


def _block(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def test_the_block_is_rebuilt_from_the_recorded_files(claims_budget, tmp_path):
    r, n = "reproduced", "not reproduced"
    claims = ["a_teff_vs_xgboost", "h_rp0_params_2mass_bprp"]
    values = [dict(zip(claims, [0.9 + 0.01 * k, 1.5])) for k in range(4)]
    _write(tmp_path / "results", [dict(zip(claims, [r, n]))] * 3, dict(zip(claims, [r, n])), values)
    doc = tmp_path / "findings.md"
    doc.write_text(f"{claims_budget.START}\n{claims_budget.END}\n")
    claims_budget.main(["--results", str(tmp_path / "results"), "--record", str(tmp_path / "rec"), "--doc", str(doc)])
    assert _block(doc.read_text(), claims_budget.START, claims_budget.END) == claims_budget.recorded_block(tmp_path / "rec")


def test_docs_findings_block_is_the_recorded_claims_budget(claims_budget):
    """docs/findings.md's claims-budget tables are docs/recorded/claims-budget/'s: no figure typed by hand."""
    folder = REPO / "docs/recorded/claims-budget"
    if not (folder / "findings.csv").is_file():
        pytest.skip("no recorded claims budget (benchmarks/claims_budget.py --record docs/recorded/claims-budget)")
    text = (REPO / "docs/findings.md").read_text()
    assert _block(text, claims_budget.START, claims_budget.END) == claims_budget.recorded_block(folder), (
        "docs/findings.md's claims-budget block is not docs/recorded/claims-budget's: rerun benchmarks/claims_budget.py --record ... --doc docs/findings.md"
    )
