"""The mock sky's files: deterministic, in the real formats, readable by the real tools."""

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import real_sample
from pipeline.gaia import xp as gaia_xp
from pipeline.io.readers import read_allstar
from pipeline.io.xp_readers import read_xp_archive_csv, read_xp_coefficients
from pipeline.sky.build import SkyConfig, build_sky, model_spectrum
from pipeline.sky.writers import write_xp_archive_csv


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_files(small_sky, tmp_path):
    sky, _ = small_sky
    again = tmp_path / "again"
    build_sky(SkyConfig(n_stars=600, seed=7, nside=8, xp_partitions=2), again)
    files = sorted(p.relative_to(sky) for p in sky.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix == ".h5":
            import h5py

            with h5py.File(sky / rel) as a, h5py.File(again / rel) as b:
                np.testing.assert_array_equal(a["best_fit"][:], b["best_fit"][:])
                np.testing.assert_array_equal(a["pixel_info"][:], b["pixel_info"][:])
        else:
            assert _digest(sky / rel) == _digest(again / rel), rel
    other = tmp_path / "other"
    build_sky(SkyConfig(n_stars=600, seed=8, nside=8, xp_partitions=2), other)
    assert _digest(sky / "allStar.fits") != _digest(other / "allStar.fits")


def test_allstar_opens_with_astropy_and_has_dr17_columns(small_sky):
    from astropy.table import Table

    sky, manifest = small_sky
    t = Table.read(sky / "allStar.fits", hdu=1)
    for col in (
        "APOGEE_ID",
        "GAIAEDR3_SOURCE_ID",
        "RA",
        "DEC",
        "GLON",
        "GLAT",
        "TEFF",
        "TEFF_ERR",
        "LOGG",
        "LOGG_ERR",
        "M_H",
        "M_H_ERR",
        "STARFLAG",
        "ASPCAPFLAG",
        "J",
        "J_ERR",
        "H",
        "H_ERR",
        "K",
        "K_ERR",
        "SNR",
        "GAIAEDR3_PHOT_G_MEAN_MAG",
        "EXTRATARG",
        "TELESCOPE",
    ):
        assert col in t.colnames, col
    assert len(t) == manifest["counts"]["allstar_rows"]
    ids, counts = np.unique(t["APOGEE_ID"], return_counts=True)
    assert (counts == 2).any(), "some stars are observed twice"
    dup = t[np.isin(t["APOGEE_ID"], ids[counts == 2])]
    assert len(set(np.round(dup["SNR"], 3))) > len(ids[counts == 2])  # repeat visits differ in SNR
    flags = np.asarray(t["ASPCAPFLAG"]).astype(np.int64)
    assert 0.03 < ((flags >> 23) & 1).mean() < 0.3  # STAR_BAD
    assert 0.005 < ((flags >> 19) & 1).mean() < 0.1  # M_H_BAD
    j = np.asarray(t["J"])
    assert (j == np.float32(99.999)).any() or manifest["counts"]["without_2mass"] == 0


def test_gaia_source_opens_with_pyarrow_and_has_archive_columns(small_sky):
    import pyarrow.parquet as pq

    sky, _ = small_sky
    t = pq.read_table(sky / "gaia_source.parquet").to_pandas()
    for col in (
        "source_id",
        "ra",
        "dec",
        "l",
        "b",
        "parallax",
        "parallax_error",
        "ruwe",
        "phot_g_mean_mag",
        "phot_bp_mean_mag",
        "phot_rp_mean_mag",
        "phot_g_mean_flux_over_error",
        "phot_bp_mean_flux_over_error",
        "phot_rp_mean_flux_over_error",
        "bp_rp",
        "phot_bp_rp_excess_factor",
        "nu_eff_used_in_astrometry",
        "pseudocolour",
        "ecl_lat",
        "astrometric_params_solved",
    ):
        assert col in t.columns, col
    assert t.source_id.is_unique
    assert set(np.unique(t.astrometric_params_solved)) <= {3, 31, 95} and 31 in set(t.astrometric_params_solved)
    assert t.loc[t.astrometric_params_solved == 3, "parallax"].isna().all()
    assert (t.ruwe > 1.4).mean() > 0.03  # binary tail
    five = t.astrometric_params_solved == 31
    assert t.loc[five, "nu_eff_used_in_astrometry"].notna().all() and t.loc[five, "pseudocolour"].isna().all()


def test_injected_zero_point_is_recoverable(small_sky):
    sky, _ = small_sky
    truth = pd.read_parquet(sky / "truth.parquet")
    g = pd.read_parquet(sky / "gaia_source.parquet").set_index("source_id")
    t = truth[truth.in_gaia]
    obs = g.loc[t.source_id]
    corrected = obs.parallax.to_numpy() - (t.zp_gdr3_mas.to_numpy() + t.zp_extra_mas.to_numpy())
    good = (obs.ruwe.to_numpy() < 1.4) & np.isfinite(corrected)
    pull = (corrected - t.parallax_true_mas.to_numpy())[good] / obs.parallax_error.to_numpy()[good]
    assert abs(np.median(pull)) < 0.15 and 0.8 < 1.4826 * np.median(np.abs(pull - np.median(pull))) < 1.2
    raw_pull = (obs.parallax.to_numpy() - t.parallax_true_mas.to_numpy())[good] / obs.parallax_error.to_numpy()[good]
    assert np.median(raw_pull) < np.median(pull)  # the zero point (negative) was injected


def test_coverage_resembles_table_1(small_sky):
    _, manifest = small_sky
    c = manifest["counts"]
    n = c["stars"]
    assert 0.85 < c["with_xp"] / n < 0.97
    assert 0.55 < c["with_good_labels"] / n < 0.78
    assert 0.2 < c["xp_without_good_labels"] / n < 0.45
    assert 0.01 < c["good_labels_without_xp"] / n < 0.15


def test_dust_map_evaluates_through_mwdust(small_sky, monkeypatch):
    sky, _ = small_sky
    import sys

    import mwdust  # noqa: F401  (DUST_DIR is set in conftest)

    c19 = sys.modules["mwdust.Combined19"]

    monkeypatch.setattr(c19, "_combineddir", str(sky / "dust" / "combined19"))
    monkeypatch.setattr(c19, "dust_dir", str(Path(str(sky / "dust" / "combined19")).parent))  # no download: the file is there
    truth = pd.read_parquet(sky / "truth.parquet").iloc[:40]
    ebv = c19.Combined19()(truth.l.to_numpy(), truth.b.to_numpy(), truth.distance_kpc.to_numpy())
    np.testing.assert_allclose(ebv, truth.ebv_c19.to_numpy(), rtol=1e-9, atol=1e-12)


def _xp_frame(sky):
    ids, bands = read_xp_coefficients(sky / "xp_continuous")
    return ids, bands


def test_xp_partitions_open_with_gaiaxpy_and_calibrate_to_the_model_spectrum(small_sky):
    from gaiaxpy import calibrate

    sky, _ = small_sky
    truth = pd.read_parquet(sky / "truth.parquet")
    bright = truth[truth.has_xp & ~truth.missing_bp].sort_values("g_true").iloc[[5, 60, 200]]
    import pyarrow.parquet as pq

    xpt = pd.concat([pq.read_table(p).to_pandas() for p in sorted((sky / "xp_continuous").glob("*.parquet"))])
    rows = xpt.set_index("source_id").loc[bright.source_id].reset_index()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spectra, grid = calibrate(rows, save_file=False)
    model = model_spectrum(
        bright.teff.to_numpy(),
        bright.logg.to_numpy(),
        bright.m_h.to_numpy(),
        bright.radius.to_numpy(),
        bright.distance_kpc.to_numpy() * 1000,
        bright.ebv_true.to_numpy(),
    )
    core = (grid > 400) & (grid < 950)
    for i in range(len(rows)):
        flux = np.asarray(spectra.flux.iloc[i])
        err = np.asarray(spectra.flux_error.iloc[i])
        # noise: calibrate(observed) against calibrate(true coefficients) is consistent with gaiaxpy's errors
        noiseless = gaia_xp.calibrated_flux(
            {
                "bp": np.stack(bright.bp_coefficients_true.to_numpy())[i : i + 1],
                "rp": np.stack(bright.rp_coefficients_true.to_numpy())[i : i + 1],
            }
        )[0]
        chi = (flux - noiseless) / err
        assert np.sqrt(np.mean(chi[core] ** 2)) < 3.0
        # and the true coefficients reproduce the model spectrum at XP resolution
        rel = np.abs(noiseless - model[i]) / model[i]
        assert np.median(rel[core]) < 0.03 and np.percentile(rel[core], 90) < 0.08


def test_relevant_bases_follow_the_real_distribution(small_sky):
    """Counts lie in 1..53, grow with brightness, and bright stars' median is near DR3's (14 BP, 8 RP)."""
    sky, _ = small_sky
    _, bands = _xp_frame(sky)
    for band, real_median in (("bp", 14), ("rp", 8)):
        c, e, n = bands[band]
        ok = np.isfinite(c[:, 0])
        c0, n = c[ok, 0], n[ok]
        assert n.max() <= 53 and n.min() >= 1
        bright = c0 > 1e4
        assert bright.sum() > 30
        assert abs(np.median(n[bright]) - real_median) <= 3
        assert np.median(n[bright]) >= np.median(n[c0 < 1e3]) if (c0 < 1e3).sum() > 10 else True


def test_high_order_coefficients_are_noise_dominated_as_in_dr3(small_sky):
    """Beyond k = 10 real DR3 coefficients of bright stars have median |c|/sigma ~ 0.7 (pure noise: 0.674)."""
    from pipeline.sky.report import xp_high_order_significance

    sky, _ = small_sky
    rows = xp_high_order_significance(sky / "xp_continuous")
    for band in ("bp", "rp"):
        assert rows[band]["pass"] and 0.5 < rows[band]["mock_median_significance"] < 1.2, rows[band]


def test_archive_csv_round_trips_and_parses_like_the_real_file(small_sky, tmp_path):
    import pyarrow.parquet as pq

    sky, _ = small_sky
    part = sorted((sky / "xp_continuous").glob("*.parquet"))[0]
    t = pq.read_table(part).to_pandas().iloc[:5]
    cols = {
        k: (
            np.stack([np.full(55 if "correl" not in k else 1485, np.nan) if v is None else v for v in t[k]])
            if k.endswith(("coefficients", "errors", "correlations"))
            else t[k].to_numpy()
        )
        for k in t.columns
    }
    cols["bp_coefficients"][2] = np.nan  # one star without BP, as in the archive
    path = tmp_path / "xp.csv"
    write_xp_archive_csv(path, cols)
    back = read_xp_archive_csv(path)
    np.testing.assert_array_equal(back.source_id, t.source_id)
    np.testing.assert_allclose(np.stack(back.rp_coefficients), np.stack(t.rp_coefficients), rtol=1e-15)
    assert back.bp_coefficients[2] is None
    real = read_xp_archive_csv(real_sample("gaia_dr3_xp_continuous_2stars.csv"))
    assert list(back.columns) == list(real.columns)
    for col in real.columns:
        assert back[col].dtype == real[col].dtype or col.startswith("bp_"), col  # bp_ is float where a star lacks BP
    assert type(back.rp_coefficients[0]) is type(real.rp_coefficients[0]) and back.rp_coefficients[0].shape == (55,)
    from gaiaxpy import calibrate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spectra, _ = calibrate(str(path), save_file=False)
    assert len(spectra) == 5


def test_real_allstar_reads_with_the_same_reader():
    df = read_allstar(real_sample("apogee_dr17_allstar_95giants.fits"), ("APOGEE_ID", "GAIAEDR3_SOURCE_ID", "TEFF", "ASPCAPFLAG"))
    assert len(df) == 95 and df.APOGEE_ID.iloc[0] == "2M19261694+3745527"


def test_missing_column_error_names_file_and_column(small_sky):
    from pipeline.io.readers import MissingColumnsError

    sky, _ = small_sky
    with pytest.raises(MissingColumnsError, match="allStar.fits.*NOPE"):
        read_allstar(sky / "allStar.fits", ("APOGEE_ID", "NOPE"))


def test_csv_sky_holds_the_same_xp_as_the_parquet_sky(small_sky, tmp_path):
    sky, _ = small_sky
    csv_sky = tmp_path / "csv"
    build_sky(SkyConfig(n_stars=600, seed=7, nside=8, xp_partitions=2, xp_format="csv"), csv_sky)
    assert sorted(p.suffix for p in (csv_sky / "xp_continuous").iterdir()) == [".csv", ".csv"]
    ids_p, bands_p = read_xp_coefficients(sky / "xp_continuous")
    ids_c, bands_c = read_xp_coefficients(csv_sky / "xp_continuous")
    np.testing.assert_array_equal(ids_p, ids_c)
    for b in ("bp", "rp"):
        np.testing.assert_allclose(bands_c[b][0], bands_p[b][0], rtol=1e-15, equal_nan=True)
        np.testing.assert_allclose(bands_c[b][1], bands_p[b][1], rtol=1e-6, equal_nan=True)  # float32 in both
