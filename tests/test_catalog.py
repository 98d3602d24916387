"""The catalog stage on a mock sky, against its truth, and on bad input."""

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.catalog.build import CatalogConfig, build_catalog
from pipeline.catalog.extinction import log_ebv_dask
from pipeline.catalog.validate import validate_catalog
from pipeline.io.readers import MissingColumnsError

FAST = CatalogConfig.from_dict({"extinction": {"n_samples": 200, "chunk_stars": 150}})


def run(sky, cfg=FAST, **paths):
    p = {"allstar": sky / "allStar.fits", "gaia": sky / "gaia_source.parquet", "xp": sky / "xp_continuous", "dust": sky / "dust"}
    p.update(paths)
    return build_catalog(p["allstar"], p["gaia"], p["xp"], p["dust"], cfg, n_workers=2)


@pytest.fixture(scope="module")
def catalog(small_sky):
    sky, _ = small_sky
    return run(sky)


def test_one_row_per_star_and_matches_are_right(catalog, small_sky):
    sky, _ = small_sky
    cat, counts = catalog
    truth = pd.read_parquet(sky / "truth.parquet")
    assert cat.apogee_id.is_unique and len(cat) <= len(truth)
    t = truth.set_index("apogee_id").loc[cat.apogee_id]
    matched = cat.match != "none"
    np.testing.assert_array_equal(cat.source_id[matched].to_numpy(), t.source_id[matched.to_numpy()].to_numpy())
    assert (cat.match == "position").sum() > 0
    assert counts["stars"] == len(cat) and counts["cuts"]["repeat visits dropped (kept highest SNR)"] > 0


def test_labels_cut_and_coverage(catalog, small_sky):
    sky, _ = small_sky
    cat, counts = catalog
    truth = pd.read_parquet(sky / "truth.parquet").set_index("apogee_id").loc[cat.apogee_id]
    assert (cat.teff.notna().to_numpy() <= truth.labels_good.to_numpy()).all()
    assert counts["with_xp"] <= truth.has_xp.sum()
    assert 0 < counts["apogee_parameters_without_xp"] < counts["with_teff_logg_m_h"]


def test_xp_is_normalised_and_masked(catalog, small_sky):
    sky, _ = small_sky
    cat, _ = catalog
    from pipeline.io.xp_readers import read_xp_coefficients

    sid, xp = read_xp_coefficients(sky / "xp_continuous")
    star = cat[cat.has_xp].iloc[3]
    i = int(np.nonzero(sid == star.source_id)[0][0])
    fg = 10 ** ((25.6873668671 - star.phot_g_mean_mag) / 2.5)
    n_rel = xp["bp"][2][i]
    for k in range(min(n_rel, 5)):
        if np.isfinite(star[f"bp{k}"]):
            assert star[f"bp{k}"] == pytest.approx(xp["bp"][0][i, k] / fg, rel=1e-6)
    if n_rel < 53:
        assert np.isnan(star[f"bp{n_rel}"]) and np.isnan(star[f"bp{n_rel}_err"])


def test_validation_against_truth(catalog, small_sky):
    sky, _ = small_sky
    cat, _ = catalog
    v = validate_catalog(cat, pd.read_parquet(sky / "truth.parquet"))
    zp = v["parallax_zero_point"]
    # 600 stars: the injected offset (tens of uas) is removed to within a few uas
    assert abs(zp["median_corrected_minus_true_uas"]) < 6 < abs(zp["median_uncorrected_minus_true_uas"])
    assert v["logebv"]["robust_scatter_vs_true"] < 0.3
    assert v["crossmatch"]["by_position_correct"] == v["crossmatch"]["by_position"]


def test_extinction_does_not_depend_on_workers_or_scheduler(small_sky):
    sky, _ = small_sky
    g = pd.read_parquet(sky / "gaia_source.parquet").iloc[:300]
    args = (g.parallax.to_numpy(), g.parallax_error.to_numpy(), g.l.to_numpy(), g.b.to_numpy(), sky / "dust")
    a = log_ebv_dask(*args, n_samples=100, chunk_stars=64, seed=5, n_workers=1)
    b = log_ebv_dask(*args, n_samples=100, chunk_stars=64, seed=5, n_workers=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.slow
def test_extinction_on_a_distributed_local_cluster(small_sky):
    sky, _ = small_sky
    g = pd.read_parquet(sky / "gaia_source.parquet").iloc[:200]
    args = (g.parallax.to_numpy(), g.parallax_error.to_numpy(), g.l.to_numpy(), g.b.to_numpy(), str(sky / "dust"))
    a = log_ebv_dask(*args, n_samples=100, chunk_stars=64, seed=5, n_workers=1)
    b = log_ebv_dask(*args, n_samples=100, chunk_stars=64, seed=5, n_workers=2, cluster="distributed")
    np.testing.assert_array_equal(a[0], b[0])


# --- bad input -------------------------------------------------------------------------------


@pytest.fixture
def sky_copy(small_sky, tmp_path):
    sky, _ = small_sky
    dest = tmp_path / "sky"
    shutil.copytree(sky, dest)
    return dest


def test_missing_allstar_column_is_named(sky_copy):
    from astropy.table import Table

    t = Table.read(sky_copy / "allStar.fits")
    t.remove_column("ASPCAPFLAG")
    t.write(sky_copy / "allStar.fits", overwrite=True)
    with pytest.raises(MissingColumnsError, match=r"allStar\.fits.*ASPCAPFLAG"):
        run(sky_copy)


def test_duplicate_gaia_source_ids_are_refused(sky_copy):
    g = pd.read_parquet(sky_copy / "gaia_source.parquet")
    pd.concat([g, g.iloc[:3]]).to_parquet(sky_copy / "gaia_source.parquet")
    with pytest.raises(ValueError, match=r"gaia_source\.parquet: duplicate source_id"):
        run(sky_copy)


def test_nan_and_inf_magnitudes_keep_the_star_without_xp_or_luminosity(sky_copy):
    g = pd.read_parquet(sky_copy / "gaia_source.parquet")
    truth = pd.read_parquet(sky_copy / "truth.parquet")
    victims = truth[truth.has_xp & truth.labels_good].source_id.iloc[:2].to_numpy()
    g.loc[g.source_id == victims[0], "phot_g_mean_mag"] = np.nan
    g.loc[g.source_id == victims[1], "phot_g_mean_mag"] = np.inf
    g.to_parquet(sky_copy / "gaia_source.parquet")
    cat, _ = run(sky_copy)
    rows = cat[cat.source_id.isin(victims)]
    assert len(rows) == 2
    assert not rows.has_xp.any() and rows.g_fakemag.isna().all() and rows.bp0.isna().all()
    assert rows.teff.notna().all()  # labels survive


def test_zero_and_negative_parallaxes(sky_copy):
    g = pd.read_parquet(sky_copy / "gaia_source.parquet")
    good = g[(g.ruwe < 1.4) & (g.parallax_error < 0.05) & (g.phot_g_mean_mag < 15)].source_id.iloc[:2].to_numpy()
    g.loc[g.source_id == good[0], "parallax"] = 0.0
    g.loc[g.source_id == good[1], "parallax"] = -0.5
    g.to_parquet(sky_copy / "gaia_source.parquet")
    cat, _ = run(sky_copy)
    rows = cat.set_index("source_id").loc[good]
    # documented handling: the pseudo-luminosity keeps its sign (eq. 9 is linear in the parallax);
    # negative parallax samples put the star at 99 kpc, i.e. the full column of dust
    assert (rows.g_fakemag <= 0.05 * 10 ** (0.2 * rows.phot_g_mean_mag)).all()
    assert rows.logebv.notna().all()


def test_xp_arrays_of_the_wrong_length_are_refused(sky_copy):
    part = sorted((sky_copy / "xp_continuous").glob("*.parquet"))[0]
    t = pq.read_table(part)
    short = pa.array([list(v[:54]) if v is not None else None for v in t["bp_coefficients"].to_pylist()], type=pa.list_(pa.float64()))
    pq.write_table(t.set_column(t.schema.get_field_index("bp_coefficients"), "bp_coefficients", short), part)
    with pytest.raises(ValueError, match=r"bp_coefficients has arrays of length \[54\]"):
        run(sky_copy)


def test_empty_tables_are_refused(sky_copy):
    g = pd.read_parquet(sky_copy / "gaia_source.parquet")
    g.iloc[:0].to_parquet(sky_copy / "gaia_source.parquet")
    with pytest.raises(ValueError, match=r"gaia_source\.parquet: the table is empty"):
        run(sky_copy)
