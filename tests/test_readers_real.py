"""The readers take the real files users download (skipped where ../shared/real-samples is absent)."""

import numpy as np
import pytest

from conftest import real_sample
from pipeline.io.readers import MissingColumnsError, read_allstar, read_gaia_source
from pipeline.io.xp_readers import read_xp_coefficients


def test_real_xp_csv_with_arrays():
    sid, xp = read_xp_coefficients(real_sample("gaia_dr3_xp_continuous_2stars.csv"))
    assert sid.tolist() == [5853498713190525696, 5762406957886626816]
    assert xp["bp"][0][0, 0] == pytest.approx(56947.03696840172)
    assert xp["bp"][2].tolist() == [53, 53] and xp["rp"][2].tolist() == [40, 50]


def test_real_xp_csv_with_a_missing_band():
    sid, xp = read_xp_coefficients(real_sample("gaia_dr3_xp_continuous_3stars_missing_bp.csv"))
    assert len(sid) == 3
    assert np.isnan(xp["bp"][0][1]).all() and xp["bp"][2][1] == 0
    assert np.isfinite(xp["rp"][0][1]).all()


def test_real_xp_flat_fits():
    sid, xp = read_xp_coefficients(real_sample("gaia_dr3_xp_continuous_2000faint.fits"))
    assert len(sid) == 2000 and xp["bp"][0].shape == (2000, 55) and xp["rp"][1].shape == (2000, 55)
    assert np.isfinite(xp["bp"][0]).all()


def test_real_gaia_source_json_with_all_solution_types():
    g = read_gaia_source(
        real_sample("gaia_dr3_source_50stars_cone.json"),
        [
            "source_id",
            "parallax",
            "parallax_error",
            "phot_g_mean_mag",
            "nu_eff_used_in_astrometry",
            "pseudocolour",
            "ecl_lat",
            "astrometric_params_solved",
            "ruwe",
        ],
    )
    assert len(g) == 50 and set(g.astrometric_params_solved) == {3, 31, 95}
    assert g.loc[g.astrometric_params_solved == 3, "parallax"].isna().all()
    from pipeline.catalog.zeropoint import FLAG_NO_SOLUTION, parallax_offset_mas

    off, flag = parallax_offset_mas(
        g.phot_g_mean_mag.to_numpy(),
        g.nu_eff_used_in_astrometry.to_numpy(),
        g.pseudocolour.to_numpy(),
        g.ecl_lat.to_numpy(),
        g.astrometric_params_solved.to_numpy(),
    )
    assert (flag[g.astrometric_params_solved.to_numpy() == 3] == FLAG_NO_SOLUTION).all()
    assert np.isfinite(off).all()


def test_real_gaia_source_in_other_formats(tmp_path):
    g = read_gaia_source(
        real_sample("gaia_dr3_source_50stars_cone.json"), ["source_id", "ra", "dec", "parallax", "astrometric_params_solved"]
    )
    from astropy.table import Table

    g.to_csv(tmp_path / "g.csv", index=False)
    g.to_parquet(tmp_path / "g.parquet")
    Table.from_pandas(g).write(tmp_path / "g.fits")
    Table.from_pandas(g).write(tmp_path / "g.ecsv")
    for ext in ("csv", "parquet", "fits", "ecsv"):
        back = read_gaia_source(tmp_path / f"g.{ext}", ["source_id", "parallax"])
        np.testing.assert_array_equal(back.source_id, g.source_id)
        np.testing.assert_allclose(back.parallax, g.parallax, equal_nan=True)


def test_real_allstar_dr17():
    a = read_allstar(
        real_sample("apogee_dr17_allstar_95giants.fits"), ["APOGEE_ID", "GAIAEDR3_SOURCE_ID", "STARFLAG", "ASPCAPFLAG", "J", "TEFF"]
    )
    assert len(a) == 95 and a.GAIAEDR3_SOURCE_ID.dtype == np.int64 and a.TEFF.dtype == np.float32


def test_missing_columns_name_the_file():
    with pytest.raises(MissingColumnsError, match="gaia_dr3_source_50stars_cone.json.*not_a_column"):
        read_gaia_source(real_sample("gaia_dr3_source_50stars_cone.json"), ["source_id", "not_a_column"])


def test_real_xp_rows_as_archive_ecsv_with_bracketed_multiline_arrays(tmp_path):
    # The archive's ECSV: a YAML header behind '#', arrays as "[c0,c1,...]" strings, which may
    # span several lines inside their quotes. Rebuild that from the real CSV rows.
    import csv

    rows = list(csv.reader(open(real_sample("gaia_dr3_xp_continuous_2stars.csv"))))
    header, body = rows[0], rows[1:]
    for r in body:
        for i, name in enumerate(header):
            if name.endswith(("coefficients", "errors", "correlations")) and r[i]:
                vals = r[i].strip("()").split(", ")
                r[i] = "[" + ",\n".join(",".join(vals[k : k + 10]) for k in range(0, len(vals), 10)) + "]"
    path = tmp_path / "xp.ecsv"
    with open(path, "w", newline="") as f:
        f.write("# %ECSV 1.0\n# ---\n# delimiter: ','\n# datatype:\n# -\n#   name: source_id\n#   datatype: int64\n")
        csv.writer(f, lineterminator="\n").writerows([header, *body])
    sid, xp = read_xp_coefficients(path)
    sid_csv, xp_csv = read_xp_coefficients(real_sample("gaia_dr3_xp_continuous_2stars.csv"))
    np.testing.assert_array_equal(sid, sid_csv)
    np.testing.assert_array_equal(xp["rp"][0], xp_csv["rp"][0])
