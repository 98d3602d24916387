"""Your own stars (`python -m pipeline apply`): files of one's own in the archive's layout give the
numbers the workflow's catalog_all partitions give for the same sources (issue 35, item 1)."""

import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline.__main__ import main

pytestmark = pytest.mark.slow


def _workflow_answers(results):
    parts = sorted((results / "catalog_all").glob("*-*.parquet"))
    assert parts, "the tiny run wrote no catalog_all partitions"
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).sort_values("source_id").reset_index(drop=True)


def _compare(got: pd.DataFrame, want: pd.DataFrame):
    got = got.sort_values("source_id").reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got, want.loc[want.source_id.isin(got.source_id)].reset_index(drop=True), rtol=1e-6, atol=1e-9)


def test_the_archives_bulk_folders_give_the_workflows_answers(tiny_run, tmp_path, caplog):
    folder, _ = tiny_run
    sky, results = folder / "sky", folder / "results"
    out = tmp_path / "stars.parquet"
    args = ["apply", "--model", str(results / "models/tiny"), "--xp", str(sky / "xp_all/xp_continuous")]
    args += ["--gaia-source", str(sky / "xp_all/gaia_source"), "--dust-dir", str(sky / "dust"), "--extinction-samples", "50"]
    with caplog.at_level("INFO"):
        assert main([*args, "--output", str(out)]) == 0
    want = _workflow_answers(results)
    got = pd.read_parquet(out)
    assert len(got) == len(want)
    _compare(got, want)
    text = caplog.text
    assert "sources/s, ETA" in text and "XP sources read" in text and "answered" in text, text[-2000:]


def test_one_file_of_ones_own_without_a_dust_map(tiny_run, tmp_path, caplog):
    """A single XP file named as the user likes (no HEALPix range), its gaia_source rows as one file:
    the same answers for the inputs given; without a dust map no ln E(B-V) input, said once."""
    folder, _ = tiny_run
    sky, results = folder / "sky", folder / "results"
    xp = sorted((sky / "xp_all/xp_continuous").iterdir())[0]
    gaia = sorted((sky / "xp_all/gaia_source").iterdir())[0]
    mine = tmp_path / ("my_field_xp" + "".join(xp.suffixes))
    shutil.copy(xp, mine)
    out = tmp_path / "stars.csv"
    with caplog.at_level("INFO"):
        rc = main(["apply", "--model", str(results / "models/tiny"), "--xp", str(mine), "--gaia-source", str(gaia), "--output", str(out)])
    assert rc == 0
    assert caplog.text.count("no dust map") == 1
    got = pd.read_csv(out)
    assert "Unnamed: 0" not in got.columns and got.logebv_input.isna().all()
    want = _workflow_answers(results)
    both = got.merge(want, on="source_id", suffixes=("", "_wf"))
    assert len(both) == len(got) > 0
    # the reduction of everything but the extinction is the workflow's
    for c in ("bprp_input", "g_fakemag_input", "ood_flags"):  # n_inputs: one fewer where ln E(B-V) was given
        np.testing.assert_allclose(both[c].to_numpy(float), both[f"{c}_wf"].to_numpy(float), rtol=1e-6, equal_nan=True)


def test_a_missing_file_and_an_unknown_request_are_one_line(tiny_run, tmp_path, capsys):
    folder, _ = tiny_run
    results = folder / "results"
    base = ["apply", "--model", str(results / "models/tiny"), "--gaia-source", str(tmp_path), "--output", str(tmp_path / "o.csv")]
    assert main([*base, "--xp", str(tmp_path / "nothing.csv")]) == 2
    assert "nothing.csv" in capsys.readouterr().err
    xp = sorted((folder / "sky/xp_all/xp_continuous").iterdir())[0]
    gaia = sorted((folder / "sky/xp_all/gaia_source").iterdir())[0]
    rc = main(
        [
            "apply",
            *base[1:3],
            "--xp",
            str(xp),
            "--gaia-source",
            str(gaia),
            "--request",
            "colour_of_the_sky",
            "--output",
            str(tmp_path / "o.csv"),
        ]
    )
    assert rc == 2 and "colour_of_the_sky" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.real_samples
@pytest.mark.parametrize(
    "xp_name",
    ["gaia_dr3_xp_continuous_2000faint.fits", "gaia_dr3_xp_continuous_3stars_missing_bp.csv", "gaia_dr3_xp_continuous_2stars.csv"],
)
def test_real_archive_files_run_and_flag_what_they_should(tiny_run, tmp_path, xp_name):
    """The real XP samples with the real 50-star gaia_source cone: none of them is in the cone, so
    every source is flagged as having no gaia_source row (bit 16) and none is answered silently
    from a wrong join."""
    from conftest import real_sample

    folder, _ = tiny_run
    xp, gaia = real_sample(xp_name), real_sample("gaia_dr3_source_50stars_cone.json")
    out = tmp_path / "real.parquet"
    assert (
        main(["apply", "--model", str(folder / "results/models/tiny"), "--xp", str(xp), "--gaia-source", str(gaia), "--output", str(out)])
        == 0
    )
    got = pd.read_parquet(out)
    from pipeline.io.readers import read_gaia_source

    in_cone = got.source_id.isin(read_gaia_source(gaia, ["source_id"]).source_id)
    assert len(got) > 0 and got.source_id.is_unique
    assert ((got.ood_flags[~in_cone] & 16) != 0).all()
    assert got.loc[~in_cone, "g_fakemag_input"].isna().all() and got.loc[~in_cone, "bprp_input"].isna().all()
