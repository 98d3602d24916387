"""The evaluation stage's science functions (checked by hand or against the paper), its metrics,
its cache files, and the agreement of its registries with the workflow."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.evaluate import science
from pipeline.evaluate.data import regression_metrics
from pipeline.evaluate.figures import FIGURES
from pipeline.evaluate.registry import TASKS
from pipeline.io.tables import read_tables, write_tables

REPO = Path(__file__).resolve().parents[1]


def test_dwarf_sequence_eq12_by_hand():
    # 4.6 below 5000 K; 4.6 - 0.0005 * 1000 = 4.1 at 6000 K; 3.95 from 6300 K on
    np.testing.assert_allclose(science.logg_dwarf([4000, 5000, 6000, 6299.9, 7000]), [4.6, 4.6, 4.1, 3.95005, 3.95])


def test_giant_sequence_eq13_by_hand():
    # logg 2.5: 5200 - 441.86 * 1.15 = 4691.861 K; logg 3.9: 5900 - 1400 * 0.25 = 5550 K
    np.testing.assert_allclose(science.teff_rgb([2.5, 3.9]), [4691.861, 5550.0])
    assert abs(science.teff_rgb(3.65 - 1e-9) - 5200.0) < 1e-3  # the two branches meet at logg 3.65
    assert science.teff_rgb(3.65) == pytest.approx(5900 - 1400 * 0.5)


def test_fakemag_distance_and_absolute_magnitude_by_hand():
    # a star at 1 kpc (1 mas) with G = 10: g_fakemag = 1 * 10^2 = 100, so M_G = 5 log10(100/100) = 0 = 10 - 10
    f = science.fakemag(1.0, 10.0)
    assert f == pytest.approx(100.0)
    assert science.distance_kpc_from_fakemag(f, 10.0) == pytest.approx(1.0)
    assert science.absolute_g_mag(f) == pytest.approx(0.0)
    # the Sun: M_G = 4.67 -> log L_G = 0
    assert science.log_luminosity_g(100 * 10 ** (4.67 / 5)) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(science.distance_kpc_from_fakemag(-5.0, 10.0))


def test_log_ebv_token_uses_the_catalog_floor():
    np.testing.assert_allclose(science.log_ebv_c19([0.0, 1.0, np.e]), [-7.0, 0.0, 1.0])


def test_extinction_curve_eq15_recovers_an_injected_curve():
    """Redden a flat spectrum by A(lambda) = R(lambda) * 0.884 * E(B-V)_C19: eq. 15 gives R back."""
    wave = np.linspace(400, 1000, 61)
    r_true = science.fitzpatrick_r(wave, 3.1)
    ebv = np.array([0.4, 1.2])
    f0 = np.ones((1, wave.size))
    fe = f0 * 10 ** (-0.4 * r_true[None, :] * 0.884 * ebv[:, None])
    r = science.extinction_curve(f0, fe, ebv)
    np.testing.assert_allclose(r, r_true[None, :] * np.ones((2, 1)), rtol=1e-12)


def test_extinction_curve_from_a_slightly_reddened_reference():
    """A reference at E(B-V)_C19 = 0.02 instead of 0: the denominator is 0.884 (E - 0.02) and R comes back.
    At 549 nm R = 3.1 (the V band), so E = 0.42 against 0.02 is A = 3.1 * 0.884 * 0.4 = 1.0962 mag."""
    wave = np.array([549.0])
    r_true = science.fitzpatrick_r(wave, 3.1)
    f_ref = 10 ** (-0.4 * r_true * 0.884 * 0.02)
    fe = 10 ** (-0.4 * r_true * 0.884 * 0.42)
    assert 2.5 * np.log10(f_ref / fe)[0] == pytest.approx(r_true[0] * 0.884 * 0.4)
    r = science.extinction_curve(f_ref[None, :], fe[None, :], np.array([0.42]), reference_ebv_c19_mag=0.02)
    np.testing.assert_allclose(r[0], r_true, rtol=1e-12)
    assert r_true[0] == pytest.approx(3.1, rel=0.02)


def test_curves_against_both_references_and_their_rms_against_the_injected_curve():
    """Task f's steps on spectra reddened by the injected curve (giants, reddenings: the chosen
    reference 0.02, the paper's 0, then 0.4 and 1.2): both references give R back, so the RMS against
    the injected curve is 0; against R_V = 2.5 it is the two curves' own RMS, worked out here."""
    from pipeline.evaluate.spectra import curves_against_references, extinction_curve_rms
    from pipeline.evaluate.truth import INJECTED_R_V

    wave = np.linspace(330, 1050, 73)
    r_true = science.fitzpatrick_r(wave, INJECTED_R_V)
    asked = np.array([0.02, 0.0, 0.4, 1.2])
    base = np.array([[1.0], [2.0], [0.5]]) * np.ones((3, wave.size))  # three giants
    flux = base[:, None, :] * 10 ** (-0.4 * r_true * 0.884 * asked[None, :, None])
    curves = curves_against_references(flux, asked)
    assert curves.shape == (3, 2, 2, wave.size)
    np.testing.assert_allclose(curves, np.broadcast_to(r_true, curves.shape), rtol=1e-10)
    assert extinction_curve_rms(wave, curves[:, 0], 400, 1000) == pytest.approx(0.0, abs=1e-9)
    w = (wave >= 400) & (wave <= 1000)
    other = science.fitzpatrick_r(wave, 2.5)
    expected = np.sqrt(np.mean((r_true[w] - other[w]) ** 2))
    assert extinction_curve_rms(wave, curves[:, 1], 400, 1000, against=other) == pytest.approx(expected, rel=1e-9)


def test_fitzpatrick_r_at_v_is_r_v():
    assert science.fitzpatrick_r(np.array([549.0]), 3.1)[0] == pytest.approx(3.1, rel=0.02)


def test_regression_metrics_by_hand():
    pred = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    ref = np.zeros(5)
    m = regression_metrics(pred, ref, sigma=np.full(5, 2.0))
    assert m["n"] == 4 and m["bias"] == 2.5
    assert m["robust_scatter"] == pytest.approx(1.4826 * 1.0)  # |x - 2.5| = 1.5, 0.5, 0.5, 1.5 -> MAD 1.0
    assert m["median_sigma"] == 2.0 and m["z_robust_std"] == pytest.approx(1.4826 * 0.5)


def test_cache_round_trips_tables_with_arrays_and_empty_columns(tmp_path):
    grid = np.linspace(0, 1, 5)
    spectra = pd.DataFrame({"teff": [4000.0, 5000.0], "flux": [grid, grid * 2]})
    curve = pd.DataFrame({"x": grid, "r": np.full(5, np.nan)})  # an all-NaN column survives
    write_tables(tmp_path / "c.parquet", {"spectra": spectra, "curve": curve})
    back = read_tables(tmp_path / "c.parquet")
    assert list(back) == ["spectra", "curve"] and list(back["curve"].columns) == ["x", "r"]
    np.testing.assert_array_equal(back["spectra"].flux[1], grid * 2)
    assert back["curve"].r.isna().all() and len(back["curve"]) == 5


def test_every_task_has_figures_each_with_a_caption_and_its_experts_are_trained():
    """The registry (evaluate/registry.py) is the one list of tasks; figures are named where they are
    drawn; the report's captions and the default config follow them."""
    captions = yaml.safe_load((REPO / "workflow/report/figures.yaml").read_text())
    assert set(FIGURES) == set(TASKS) and all(FIGURES[t] for t in TASKS)
    assert {t: set(f) for t, f in captions.items()} == {t: set(f) for t, f in FIGURES.items()}
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert set(config["evaluate"]["tasks"]) == set(TASKS)
    trained = set(config["baselines"]["experts"])
    for name, task in TASKS.items():
        assert name == "mass_age" or set(task.experts) <= trained, (name, task.experts)


def test_xp_spectrum_is_gaiaxpy_calibrate(small_sky):
    """G-normalised coefficients scaled back by F_G(G) give what gaiaxpy.calibrate gives for the raw ones."""
    import warnings

    import pyarrow.parquet as pq
    from gaiaxpy import calibrate

    from pipeline.gaia.photometry import g_flux_e_per_s

    sky, _ = small_sky
    rows = pq.read_table(sorted((sky / "xp_continuous").glob("*.parquet"))[0]).to_pandas()
    rows = rows[rows.bp_coefficients.notna() & rows.rp_coefficients.notna()].iloc[:3].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spectra, grid = calibrate(rows, save_file=False, truncation=False)
    g = np.array([11.0, 13.5, 16.0])
    f_g = g_flux_e_per_s(g)[:, None]
    bp, rp = (np.stack(rows[f"{b}_coefficients"].to_numpy()) / f_g for b in ("bp", "rp"))
    wave, flux = science.xp_spectrum(bp, rp, g_mag=g)
    np.testing.assert_allclose(wave, grid)
    np.testing.assert_allclose(flux, np.stack(spectra.flux.to_numpy()), rtol=1e-6, atol=1e-25)


def test_extinction_reference_is_the_least_reddening_of_the_giants():
    from pipeline.evaluate.settings import ExtinctionCurve
    from pipeline.evaluate.spectra import reference_ebv_c19

    rng = np.random.default_rng(0)
    logg = np.r_[rng.uniform(1.0, 2.5, 200), np.full(50, 4.4)]  # 200 giants, 50 dwarfs
    logebv = np.r_[np.log(np.linspace(0.02, 1.0, 200)), np.full(50, -7.0)]  # only the dwarfs are unreddened
    df = pd.DataFrame({"logg": logg, "logebv": logebv})
    cfg = ExtinctionCurve(logg_min=1.0, logg_max=2.5, reference_percentile=0.0)
    assert reference_ebv_c19(df, cfg) == pytest.approx(0.02)  # the least reddened giant, not a dwarf at e^-7
    pct50 = ExtinctionCurve(logg_min=1.0, logg_max=2.5, reference_percentile=50.0)
    assert reference_ebv_c19(df, pct50) == pytest.approx(np.exp(np.median(logebv[:200])))
    paper = ExtinctionCurve(logg_min=1.0, logg_max=2.5, reference_ebv_c19=0)
    assert reference_ebv_c19(df, paper) == 0.0  # the paper's
    with pytest.raises(ValueError, match="only 0 giants"):
        reference_ebv_c19(df[df.logg > 3], cfg)


def test_extinction_reference_reads_the_training_split_not_the_test_stars(tmp_path):
    # the reference describes what the model saw: the train split of the test stars' own store
    from pipeline.evaluate.data import load_test_stars, training_stars
    from pipeline.tokens.store import build_token_store, open_token_store
    from pipeline.tokens.vocab import vocabulary

    n = 400
    rng = np.random.default_rng(1)
    cat = pd.DataFrame(
        {"source_id": np.arange(1, n + 1), "apogee_id": [f"2M{i:08d}" for i in range(n)], "phot_g_mean_mag": rng.uniform(9, 15, n)}
    )
    for t in vocabulary():
        cat[t], cat[f"{t}_err"] = rng.normal(size=n), np.full(n, 0.1)
    build_token_store(cat, tmp_path / "stars.zarr", vocabulary(), chunk_stars=128)
    cat.to_parquet(tmp_path / "catalog.parquet")
    test = load_test_stars(tmp_path / "stars.zarr", tmp_path / "catalog.parquet")
    train = training_stars(test, ["logg", "logebv"])
    is_train = open_token_store(tmp_path / "stars.zarr")["split"][:] == 0
    assert list(train.columns[:2]) == ["logg", "logebv"] and len(train) == is_train.sum() > len(test)
    np.testing.assert_array_equal(train.row, np.nonzero(is_train)[0])
    np.testing.assert_allclose(train.logebv, cat.logebv.to_numpy(np.float32)[is_train])
    with pytest.raises(ValueError, match="token store"):
        training_stars(pd.DataFrame({"logg": [2.0]}), ["logg"])


def test_report_captions_are_valid_restructuredtext():
    """Snakemake renders the captions as reStructuredText: |x| is a substitution there and fails."""
    import io

    from docutils.core import publish_doctree

    captions = yaml.safe_load((REPO / "workflow/report/figures.yaml").read_text())
    for task, figs in captions.items():
        for name, text in figs.items():
            stream = io.StringIO()
            publish_doctree(text, settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": stream})
            assert not stream.getvalue(), f"workflow/report/figures.yaml {task}.{name}: {stream.getvalue()}"


def test_task_settings_take_shared_keys_their_block_and_refuse_unknown_keys():
    from pipeline.evaluate.settings import check, figure_dpi, task_settings

    s = task_settings("extinction_curve", {"batch_size": 64, "dpi": 90, "extinction_curve": {"rms_bar": 0.3}})
    assert (s.batch_size, s.dpi, s.rms_bar, s.logg_min) == (64, 90, 0.3, 1.0)  # given, given, given, default
    assert task_settings("parameters_to_parameters", {"parameters_to_parameters": {"grid": {"logg_step": 0.5}}}).grid.logg_step == 0.5
    assert task_settings("spectrafm", {"batch_size": 4096}).batch_size == 256  # pixel spectra keep their own
    assert figure_dpi({"dpi": 72}) == 72 and figure_dpi({}) == 110
    with pytest.raises(ValueError, match=r"evaluate\.attention: unknown key\(s\) \['n_star'\]"):
        check({"attention": {"n_star": 10}})
    with pytest.raises(ValueError, match=r"evaluate\.parameters_to_parameters\.grid: unknown key"):
        check({"parameters_to_parameters": {"grid": {"logg_stepp": 0.1}}})


def test_keywords_pass_only_the_keys_given_and_name_an_unknown_one():
    from pipeline.settings import keywords

    def step(x, n_stars: int = 3000, seed: int = 8):
        return n_stars, seed

    assert keywords(step, {"seed": 1}, "block") == {"seed": 1}
    assert step(0, **keywords(step, {"enabled": True}, "block", ignore=("enabled",))) == (3000, 8)
    with pytest.raises(ValueError, match=r"sky\.apogee_spectra: unknown key\(s\) \['n_star'\]"):
        keywords(step, {"n_star": 5}, "sky.apogee_spectra")
