"""The findings at a glance (issue 48): the forest plot of every claim and the readable claims table,
both drawn from claims.csv (or findings.csv) alone."""

import numpy as np
import pytest

from claims_helpers import RATIO_ROW, _summary
from pipeline.evaluate import claims as C
from pipeline.evaluate import findings as F
from pipeline.evaluate import verdicts as V
from pipeline.evaluate.figures.claims import COLOURS, claims_html, forest_plot, forest_rows, paper_number


def _claims():
    s = _summary(
        [
            RATIO_ROW,
            {"task": "x", "target": "teff", "metric": "b", "model": 120, "model_lo": 110, "model_hi": 130},
            {"task": "x", "target": "teff", "metric": "d", "model": -0.1, "model_lo": -0.2, "model_hi": 0.05},
        ]
    )
    row = C.Row("x", "teff", "a", "ratio")
    claims = (
        C.Claim("r", "LB23", "Fig. 4", "the model beats the expert", "model / XGBoost 0.93x", C.Below(row, 1.0), "order"),
        C.Claim("s", "LB23", "Fig. 5", "as well as the expert", "0.04 mag", C.Similar(row, 1 / 0.85), "band"),
        C.Claim(
            "o", "SpectraFM", "Table 1", "a beats b", "19.1 K vs 182.9 K", C.Less(C.Row("x", "teff", "a"), C.Row("x", "teff", "b")), "o"
        ),
        C.Claim("w", "LB23", "Fig. 12", "a switch", "uses Teff", C.Above(C.Row("x", "teff", "d"), 0.0), "switch"),
    )
    return C.judge_claims(s, claims=claims)


def _point_colours(fig):
    """The colours of the claims' points (round markers), one per row, top to bottom per panel."""
    from matplotlib.colors import to_hex

    out = []
    for ax in fig.axes:
        pts = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and ln.get_markerfacecolor() != "white"]
        out += [to_hex(ln.get_color()) for ln in sorted(pts, key=lambda ln: -ln.get_ydata()[0])]
    return out


def test_the_papers_number_on_the_ratio_scale():
    assert paper_number("model / XGBoost 0.93x (47 K)") == pytest.approx(0.93)
    assert paper_number("RMSE 0.232 vs 0.510") == pytest.approx(0.232 / 0.510)
    assert paper_number("19.1 K vs 182.9 K") == pytest.approx(19.1 / 182.9)
    assert np.isnan(paper_number("0.04 mag")) and np.isnan(paper_number("13.4%"))


def test_the_figure_has_one_row_per_claim_with_its_line():
    claims = _claims()
    rows = forest_rows(claims)
    assert rows.claim.tolist() == claims.claim.tolist()  # every claim, in the table's order
    assert rows.log.tolist() == [True, True, True, False]  # the difference goes to the linear panel
    assert rows.loc[1, ["line_lo", "line_hi", "side"]].tolist() == [pytest.approx(0.85), pytest.approx(1 / 0.85), "inside"]
    fig = forest_plot(claims)
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert len(labels) == len(claims) and all(f"[{r.paper} {r.where}]" in lab for lab, r in zip(labels, claims.itertuples()))


def test_a_verdict_changes_its_colour():
    claims = _claims()
    before = _point_colours(forest_plot(claims))
    assert before[0] == COLOURS[claims.verdict[0]].lower()
    flipped = claims.copy()
    flipped.loc[0, "verdict"] = V.NOT_REPRODUCED if claims.verdict[0] != V.NOT_REPRODUCED else V.REPRODUCED
    after = _point_colours(forest_plot(flipped))
    assert after[0] == COLOURS[flipped.verdict[0]].lower() != before[0] and after[1:] == before[1:]


def test_a_findings_table_is_drawn_with_its_confirmation_sky():
    claims = _claims()
    table = F.findings_table(claims, None, claims)
    rows = forest_rows(table)
    plain = ~rows.over_line  # a claim in its own units is drawn over its line, the others as they are
    assert rows.value[plain].tolist() == pytest.approx(claims.value[plain].tolist()) and rows.confirm.notna().all()
    assert rows.value[2] == pytest.approx(90 / 120) and rows.over_line.tolist() == [False, False, True, False]
    assert set(rows.verdict) == {F.UNCONFIRMED}  # no seeds: each coloured by its finding


def test_the_readable_table_has_the_readers_columns_and_marks():
    claims = _claims()
    page = claims_html(claims)
    head = page[page.index('<table id="claims">') : page.index("</thead>")]
    assert [h in head for h in ("paper", "where", "claim", "paper's value", "ours (95% interval)", "verdict")] == [True] * 6
    assert "test" not in head and "rows" not in head  # the internal keys are in the second table
    assert page.count('class="mark"') == len(claims) and '<table id="tests">' in page
    assert "table-layout: fixed" in page


def test_the_readme_summary_is_the_tally_per_paper_and_the_links():
    claims = _claims()
    findings = F.findings_table(claims, None, claims)
    findings.loc[0, "verdict"] = F.REPRODUCED
    text = F.readme_summary(findings, "docs/recorded/findings.png")
    assert text.startswith(f"**{F.tally(findings)}**")
    assert "| LB23 | 3 | 1 | 0 | 0 | 2 |" in text and "| SpectraFM | 1 | 0 | 0 | 0 | 1 |" in text
    assert "- reproduced on all three: LB23 Fig. 4." in text
    assert "[docs/findings.md](docs/findings.md)" in text and "(docs/recorded/findings.png)" in text
    assert len(text.splitlines()) < 15


def test_the_recorded_figure_is_linked_from_the_readme_docs_and_the_card(tmp_path):
    from conftest import REPO

    recorded = REPO / "docs/recorded"
    if not (recorded / F.RECORDED_FIGURE).is_file():
        pytest.skip("no recorded findings figure (docs/recorded/findings.png) yet")
    assert f"]({F.FIGURE_LINK})" in (REPO / "README.md").read_text()
    assert f"](recorded/{F.RECORDED_FIGURE})" in (REPO / "docs/findings.md").read_text()


def test_the_model_card_shows_the_runs_figure(tmp_path):
    from pipeline.model.hub import FIGURE, export_hub

    pytest.importorskip("safetensors")
    import json

    import torch

    from pipeline.model.model import StellarTransformer, preset
    from pipeline.tokens.vocab import vocabulary

    cfg = preset("tiny")
    folder = tmp_path / "model"
    folder.mkdir()
    vocab = list(vocabulary())
    torch.save(StellarTransformer(cfg).state_dict(), folder / "model.pt")
    meta = {"model": cfg.to_dict(), "vocabulary": vocab, "median": [0.0] * len(vocab), "mad_std": [1.0] * len(vocab)}
    (folder / "config.json").write_text(json.dumps(meta))
    figure = tmp_path / "claims.png"
    forest_plot(_claims()).savefig(figure)
    out = export_hub(folder, tmp_path / "hub", results=tmp_path, mock=True, findings="| a table |\n", figure=figure)
    card = (out / "README.md").read_text()
    assert f"]({FIGURE})" in card and (out / FIGURE).read_bytes() == figure.read_bytes()
