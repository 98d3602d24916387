"""catalog_all: the archive's bulk layout, the all-sky mock population, one partition reduced as the
catalog reduces and answered by the model, the summary and the judgement against the truth."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.apply.catalogue import OOD_BITS, answer, read_partition, reduce_partition, training_domain
from pipeline.catalog.build import CatalogConfig, build_catalog
from pipeline.gaia.bulk import bulk_files, equal_ranges, file_range, healpix8, overlapping, paired_partitions, range_name
from pipeline.io.readers import InputFileError, read_gaia_source
from pipeline.io.xp_readers import read_xp_coefficients
from pipeline.sky.xp_all import XpAllConfig, build_xp_all, file_names, partition_names


def test_bulk_files_are_named_by_level8_healpix_ranges():
    # source_id // 2^35 is the level-12 index (Gaia's documentation); level 8 is 4^4 = 256 times coarser
    assert healpix8(5 * 2**43 + 12345) == 5
    assert healpix8(4096 * 2**35) == 16  # level-12 pixel 4096 lies in level-8 pixel 4096 / 256
    assert equal_ranges(1) == [(0, 786431)]  # 12 x 4^8 - 1, the last file's upper end in DR3
    assert range_name(0, 3111) == "000000-003111"
    assert file_range("GaiaSource_000000-003111.csv.gz") == (0, 3111)
    assert [r[1] + 1 for r in equal_ranges(4)] == [196608, 393216, 589824, 786432]
    files = {n: f"X_{n}.csv.gz" for n in ("000000-000099", "000100-000199", "000200-000299")}
    assert overlapping(files, 150, 250) == ["X_000100-000199.csv.gz", "X_000200-000299.csv.gz"]
    with pytest.raises(InputFileError, match="no HEALPix range"):
        file_range("gaia_source.csv.gz")


def test_xp_files_are_paired_with_the_gaia_source_files_of_overlapping_ranges(tmp_path):
    """An XP file of a range joins the gaia_source files whose ranges overlap it (the archive's two
    tables may be cut differently); an empty folder is an error naming it."""
    (tmp_path / "xp").mkdir(), (tmp_path / "gs").mkdir()
    for name in ("000000-000199", "000200-000399"):
        (tmp_path / "xp" / f"XpContinuousMeanSpectrum_{name}.csv.gz").write_text("")
    for name in ("000000-000099", "000100-000249", "000250-000399"):
        (tmp_path / "gs" / f"GaiaSource_{name}.csv.gz").write_text("")
    pairs = paired_partitions(tmp_path / "xp", tmp_path / "gs")
    assert sorted(pairs) == ["000000-000199", "000200-000399"]
    assert [Path(f).name for f in pairs["000000-000199"]["gaia_source"]] == [
        "GaiaSource_000000-000099.csv.gz",
        "GaiaSource_000100-000249.csv.gz",
    ]
    assert [Path(f).name for f in pairs["000200-000399"]["gaia_source"]] == [
        "GaiaSource_000100-000249.csv.gz",
        "GaiaSource_000250-000399.csv.gz",
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: no bulk files"):
        paired_partitions(tmp_path / "xp", tmp_path / "empty")


@pytest.fixture(scope="module")
def xp_all(small_sky, tmp_path_factory):
    sky, _ = small_sky
    out = tmp_path_factory.mktemp("xp_all") / "xp_all"
    manifest = build_xp_all(XpAllConfig(n_sources=800, partitions=2, chunk=500, seed=5), sky / "dust/combined19/combine19.h5", out)
    return out, manifest


def test_the_all_sky_population_is_written_in_the_archive_layout(xp_all):
    out, manifest = xp_all
    names = partition_names(2)
    assert manifest["counts"]["sources"] == 800 and set(manifest["counts"]["per_partition"]) == set(names)
    truth = pd.read_parquet(out / "truth.parquet")
    assert len(truth) == 800 and truth.source_id.is_unique
    assert 0.5 < (truth.logg >= 3.5).mean() < 0.9  # a magnitude-limited sample: mostly dwarfs
    assert truth.m_h.lt(-1).any() and truth.logg.lt(3.5).any()
    seen = 0
    for name in names:
        files = file_names(name, "csv.gz")
        lo, hi = file_range(files["xp_continuous"])
        sid, xp = read_xp_coefficients(out / files["xp_continuous"])
        assert ((healpix8(sid) >= lo) & (healpix8(sid) <= hi)).all()  # each file holds its range only
        gaia = read_gaia_source(out / files["gaia_source"], ["source_id", "parallax", "phot_g_mean_mag", "l", "b"])
        assert set(gaia.source_id) == set(sid)  # the two tables of a range hold the same sources
        assert np.isfinite(xp["rp"][0]).all() and (gaia.phot_g_mean_mag < 17.65).all()
        seen += sid.size
    assert seen == 800
    assert set(bulk_files(out / "xp_continuous")) == set(names)


def test_a_partition_is_reduced_exactly_as_the_catalog_reduces_apogee_stars(small_sky, tmp_path):
    """The sky's own APOGEE stars as one bulk partition: XP tokens, BP-RP and g_fakemag equal the
    catalog's; logebv agrees within the Monte Carlo noise of fewer samples."""
    sky, _ = small_sky
    cfg = CatalogConfig()
    cat, _ = build_catalog(sky / "allStar.fits", sky / "gaia_source.parquet", sky / "xp_continuous", sky / "dust", cfg)
    import pyarrow as pa
    import pyarrow.parquet as pq

    whole = range_name(0, 786431)  # the whole sky as one partition
    xp_path = tmp_path / f"XpContinuousMeanSpectrum_{whole}.parquet"
    pq.write_table(pa.concat_tables([pq.read_table(f) for f in sorted((sky / "xp_continuous").glob("*.parquet"))]), xp_path)
    gaia_path = tmp_path / f"GaiaSource_{whole}.parquet"
    pd.read_parquet(sky / "gaia_source.parquet").to_parquet(gaia_path)
    g, x = read_partition([gaia_path], xp_path)
    red = reduce_partition(g, x, training_domain(cat), sky / "dust", cfg, n_samples=1000, chunk_stars=2000, seed=1).set_index("source_id")
    ours = cat[cat.has_xp].set_index("source_id")
    common = ours.index.intersection(red.index)
    assert len(common) == len(ours) > 100
    a, b = ours.loc[common], red.loc[common]
    coef = [f"{band}{k}" for band in ("bp", "rp") for k in range(55)]
    both = a[coef].notna().to_numpy() & b[coef].notna().to_numpy()
    np.testing.assert_allclose(b[coef].to_numpy()[both], a[coef].to_numpy()[both], rtol=1e-12)
    # what the catalog kept, the reduction keeps (its clip bounds are the catalog's kept range)
    assert (a[coef].notna().to_numpy() <= b[coef].notna().to_numpy()).all()
    for col in ("bprp", "bprp_err", "g_fakemag", "g_fakemag_err"):
        np.testing.assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float), rtol=1e-12, equal_nan=True, err_msg=col)
    ok = a.logebv.notna() & b.logebv.notna()
    assert ok.sum() > 100 and np.nanmedian(np.abs(b.logebv[ok] - a.logebv[ok])) < 0.05
    assert b.xp_ok.all() and not (b.ood_flags.to_numpy() & 8).any()


def test_answers_come_for_sources_with_inputs_and_flags_say_why(xp_all, small_sky):
    from pipeline.model.api import StellarModel
    from pipeline.model.model import ModelConfig, StellarTransformer
    from pipeline.tokens.vocab import vocabulary

    out, _ = xp_all
    sky, _ = small_sky
    vocab = vocabulary()
    net = StellarTransformer(
        ModelConfig(vocab_size=len(vocab), embed_dim=16, context=64, encoder_heads=4, encoder_ffn=32, decoder_heads=4, decoder_ffn=32)
    )
    meta = {"vocabulary": list(vocab), "median": [0.0] * len(vocab), "mad_std": [1.0] * len(vocab), "model": {"context": 64}}
    model = StellarModel(net, meta)
    name = partition_names(2)[0]
    files = file_names(name, "csv.gz")
    g, x = read_partition([out / files["gaia_source"]], out / files["xp_continuous"])
    cat, _ = build_catalog(sky / "allStar.fits", sky / "gaia_source.parquet", sky / "xp_continuous", sky / "dust", CatalogConfig())
    domain = training_domain(cat)
    domain["phot_g_mean_mag"] = [10.0, 15.0]  # a narrow training range: brighter and fainter sources are flagged
    tokens = reduce_partition(g, x, domain, sky / "dust", CatalogConfig(), n_samples=50, chunk_stars=500, seed=1)
    tokens.loc[0, [c for c in tokens if c[:2] in ("bp", "rp") or c.startswith(("bprp", "g_fakemag", "logebv"))]] = np.nan
    from pipeline.baselines.xgb import resolve_inputs

    got = answer(model, tokens, resolve_inputs("xp30_gaia"), ["teff", "logg"], batch_size=128)
    assert got.n_inputs.iloc[0] == 0 and got.teff.isna().iloc[0]  # nothing given: no answer, no made-up value
    assert got.teff.iloc[1:].notna().all() and (got.teff_err.iloc[1:] > 0).all()
    assert got.n_inputs.max() <= 63
    gmag = tokens.phot_g_mean_mag
    flagged = (tokens.ood_flags & 1) != 0
    assert (flagged == ((gmag < 10) | (gmag > 15))).all() and set(OOD_BITS) == {1, 2, 4, 8, 16}
    assert (tokens.ood == (tokens.ood_flags != 0)).all()
    # one pass for two requests answers what each request alone answers
    alone = answer(model, tokens, resolve_inputs("xp30_gaia"), ["logg"], batch_size=128)
    np.testing.assert_allclose(alone.logg.to_numpy(float), got.logg.to_numpy(float), rtol=1e-5, atol=1e-5, equal_nan=True)


def test_the_judgement_against_truth_finds_perfect_answers_perfect(xp_all, tmp_path):
    from pipeline.evaluate.catalog_all import judge, truth_values

    out, _ = xp_all
    truth = pd.read_parquet(out / "truth.parquet")
    true = truth_values(truth)
    answers = true.copy()
    for t in ("teff", "logg", "m_h", "logebv", "g_fakemag"):
        answers[f"{t}_err"] = 1.0
    answers["phot_g_mean_mag"] = truth.g_true
    answers["ood"] = False
    answers.loc[:9, "ood"] = True
    answers.loc[10:, "teff"] += 1.0  # off by 1 K
    answers.loc[:9, "teff"] += 500.0  # the flagged ones are wrong
    metrics, table = judge(answers, truth)
    m = metrics["labels"]["teff"]
    assert m["in_distribution"]["scatter"] == pytest.approx(0, abs=1e-9) and m["in_distribution"]["bias"] == pytest.approx(1.0)
    assert m["out_of_distribution"]["bias"] == pytest.approx(500.0) and m["ood_error_ratio"] == pytest.approx(500.0)
    assert metrics["labels"]["logg"]["in_distribution"]["scatter"] == 0
    assert metrics["n_ood"] == 10 and len(table) == len(answers)
    # g_fakemag = true parallax x 10^(G/5) (eq. 9): one star by hand
    row = truth.iloc[0]
    assert true.g_fakemag.iloc[0] == pytest.approx(row.parallax_true_mas * 10 ** (0.2 * row.g_true))
    assert {r["target"] for r in metrics["summary"]} == {"teff", "logg", "m_h", "logebv", "g_fakemag"}


def test_a_truncated_or_misnamed_bulk_file_is_an_error_naming_it(xp_all, tmp_path):
    import shutil

    out, _ = xp_all
    files = file_names(partition_names(2)[0], "csv.gz")
    src = out / files["xp_continuous"]
    cut = tmp_path / src.name
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # an interrupted download
    with pytest.raises(InputFileError, match=cut.name):
        read_partition([out / files["gaia_source"]], cut)
    wrong = tmp_path / "XpContinuousMeanSpectrum_000000-000001.csv.gz"  # a range its sources are not in
    shutil.copy(src, wrong)
    with pytest.raises(InputFileError, match="outside the file's range"):
        read_partition([out / files["gaia_source"]], wrong)
    with pytest.raises(FileNotFoundError, match="nothing_here: not a folder"):
        bulk_files(tmp_path / "nothing_here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: no bulk files"):
        bulk_files(tmp_path / "empty")


def test_the_summary_folds_partitions_and_its_figures_draw_from_its_tables(tmp_path):
    from pipeline.apply.summary import MAP_LEVEL, healpix_of, summarise
    from pipeline.evaluate.figures import SUMMARY_FIGURES, draw
    from pipeline.gaia.bulk import SOURCE_ID_HEALPIX8_FACTOR
    from pipeline.io.tables import read_tables

    # the level-5 pixel is the level-8 pixel // 4^3: pixel 1000 at level 8 is 15 at level 5
    assert healpix_of(1000 * SOURCE_ID_HEALPIX8_FACTOR + 7, MAP_LEVEL) == 15
    parts = []
    for k, pix8 in enumerate((1000, 64000)):  # two partitions, 3 sources each, one flagged OOD
        df = pd.DataFrame(
            {
                "source_id": pix8 * SOURCE_ID_HEALPIX8_FACTOR + np.arange(3),
                "teff": [5000.0, 5200.0, np.nan],
                "teff_err": [50.0, 60.0, np.nan],
                "logg": [4.5, 2.5, np.nan],
                "logg_err": 0.1,
                "m_h": [0.0, -1.0 - k, np.nan],
                "m_h_err": 0.05,
                "logebv": np.log([0.1, 0.3, 0.2]),
                "xp_ok": [True, True, False],
                "parallax_usable": [True, False, False],
                "ood": [False, False, True],
                "ood_flags": [0, 0, 8],
            }
        )
        parts.append(tmp_path / f"part{k}.parquet")
        df.to_parquet(parts[-1])
    summary = summarise(parts, tmp_path / "summary.json", tmp_path / "tables.parquet")
    assert summary["sources"] == 6 and summary["answered"] == 4 and summary["ood"] == 2 and summary["partitions"] == 2
    assert summary["ood_reasons"][OOD_BITS[8]] == 2 and summary["rates"]["parallax_usable"] == pytest.approx(2 / 6)
    tables = read_tables(tmp_path / "tables.parquet")
    sky = tables["sky"].set_index("pixel")
    assert list(sky.index) == [1000 // 64, 64000 // 64] and sky.n.tolist() == [2, 2]
    assert sky.m_h.tolist() == pytest.approx([-0.5, -1.0]) and sky.ebv.tolist() == pytest.approx([0.2, 0.2])
    assert tables["kiel"]["count"].sum() == 4 and tables["sigma"].groupby("label")["count"].sum().to_dict() == {
        "logg": 4,
        "m_h": 4,
        "teff": 4,
    }
    for name in SUMMARY_FIGURES:
        draw("catalog_all_summary", name, tmp_path / "tables.parquet", tmp_path / "summary.json", tmp_path / f"{name}.png", dpi=40)
        assert (tmp_path / f"{name}.png").stat().st_size > 3000, name
