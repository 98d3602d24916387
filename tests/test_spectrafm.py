"""SpectraFM (issue 8): the pixel store (mock and real aspcapStar files), the model with its
wavelength encoding, chunked prediction, frozen fine-tunes, the FCNN and the attention read-out."""

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.sky.apogee import line_list
from pipeline.sky.apogee_store import alpha_over_iron_dex, aspcap_label_errors, build_mock_store
from pipeline.spectrafm.aspcap import apogee_id_from_filename
from pipeline.spectrafm.fcnn import train_fcnn
from pipeline.spectrafm.model import FCNN, FCNNConfig, SpectraFM, freeze, pixel_tokens, preset, wavelength_encoding
from pipeline.spectrafm.predict import attention, chunk_starts, load_model, near_lines, predict
from pipeline.spectrafm.store import LABELS, SpectraStore, build_real_store
from pipeline.spectrafm.train import StageConfig, train_stage


# -- the mock's chemistry and labels, by hand ---------------------------------------------------------
def test_alpha_sequences_by_hand():
    fe = np.array([-1.5, -1.0, 0.0, 0.3])
    assert alpha_over_iron_dex(fe, True) == pytest.approx([0.30, 0.30, 0.30 - 0.25 * 0.7, 0.30 - 0.25 * 0.8])  # plateau below -0.7
    assert alpha_over_iron_dex(fe, False) == pytest.approx([0.10, 0.10, 0.0, -0.03])


def test_label_errors_at_snr_100_and_400():
    e = aspcap_label_errors([100.0, 400.0])
    assert e["teff"][0] == pytest.approx(12.0) and e["fe_h"][0] == pytest.approx(0.010)
    assert e["teff"][1] == pytest.approx(12.0 * 0.25**0.8)  # (100 / 400)^0.8


def test_apogee_id_from_the_file_name():
    assert apogee_id_from_filename("/x/aspcapStar-dr17-2M00000002+7417074.fits") == "2M00000002+7417074"
    with pytest.raises(ValueError, match="not an aspcapStar"):
        apogee_id_from_filename("apStar-dr17-2M0.fits")


# -- stores ----------------------------------------------------------------------------------------------
def _fake_sky(tmp_path, n=400, seed=3):
    """A truth table and an allStar file of n APOGEE stars, a third of them iron-poor."""
    from astropy.table import Table

    rng = np.random.default_rng(seed)
    ids = [f"2M{i:08d}+0000000" for i in range(n)]
    m_h = np.where(rng.random(n) < 0.33, rng.uniform(-2.3, -1.1, n), rng.uniform(-0.8, 0.4, n))
    truth = pd.DataFrame(
        {"apogee_id": ids, "teff": rng.uniform(3900, 6200, n), "logg": rng.uniform(1.0, 4.6, n), "m_h": m_h, "labels_good": True}
    )
    truth.to_parquet(tmp_path / "truth.parquet")
    Table({"APOGEE_ID": ids, "SNR": rng.uniform(50, 300, n)}).write(tmp_path / "allStar.fits")
    return truth


@pytest.fixture(scope="module")
def mock_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sfm")
    truth = _fake_sky(tmp)
    build_mock_store(
        tmp / "truth.parquet", tmp / "allStar.fits", tmp / "spectra.zarr", n_stars=300, metal_poor_fraction=0.25, split=(0.6, 0.2, 0.2)
    )
    return tmp, truth


def test_mock_store_holds_both_spectra_labels_and_truth(mock_store):
    tmp, truth = mock_store
    s = SpectraStore(tmp / "spectra.zarr")
    assert s.root["observed"].shape == s.root["synthetic"].shape == (300, 7514)
    assert s.labels == LABELS and set(s.stars.split) == {"train", "val", "test"} and (s.stars.split == "test").sum() == 60
    assert (s.stars.true_fe_h < -1).mean() == pytest.approx(0.25, abs=0.01)
    assert set(s.stars.apogee_id) <= set(truth.apogee_id)
    # labels scatter about the truth by their errors
    z = (s.stars.fe_h - s.stars.true_fe_h) / s.stars.fe_h_err
    assert 0.7 < z.std() < 1.3
    syn = s.read("synthetic", np.arange(20), np.arange(7514))
    obs = s.read("observed", np.arange(20), np.arange(7514))
    assert np.isfinite(syn).all() and 0.005 < np.isnan(obs).mean() < 0.05


def test_survey_mix_thins_the_iron_poor_rows_by_hand():
    from pipeline.spectrafm.train import survey_mix

    fe_h = np.r_[np.full(30, -1.5), np.full(70, 0.0)]  # 30% iron-poor
    rows = survey_mix(np.arange(100), fe_h, 0.125, seed=0)
    # every rich row kept (70); poor ones: 0.125 / 0.875 x 70 = 10, so 10 of 80 rows
    assert rows.size == 80 and (fe_h[rows] < -1).sum() == 10 and set(range(30, 100)) <= set(rows)
    assert np.array_equal(rows, np.sort(rows)) and np.array_equal(rows, survey_mix(np.arange(100), fe_h, 0.125, seed=0))
    assert survey_mix(np.arange(100), fe_h, None, seed=0).size == 100  # a store that is the survey itself
    assert survey_mix(np.arange(100), fe_h, 0.5, seed=0).size == 100  # rarer than that already: unchanged
    assert survey_mix(np.arange(0), fe_h, 0.125, seed=0).size == 0  # no rows, no warning


def test_a_stage_with_the_survey_mix_trains_on_the_surveys_share(mock_store):
    from pipeline.spectrafm.train import stage_rows

    tmp, truth = mock_store
    s = SpectraStore(tmp / "spectra.zarr")
    # the mock store records its survey's share: here a third of the fake sky (the default sky: ~4%)
    assert s.attrs["survey_fe_h_poor_fraction"] == pytest.approx((truth.m_h < -1).mean())
    s.attrs["survey_fe_h_poor_fraction"] = 0.05
    fe_h = s.stars.fe_h.to_numpy()
    store_mix, survey = (stage_rows(s, StageConfig(mix=m), "train") for m in ("store", "survey"))
    assert (fe_h[store_mix] < -1).mean() > 0.2 and (fe_h[survey] < -1).mean() == pytest.approx(0.05, abs=0.01)
    assert set(store_mix[fe_h[store_mix] > -1]) <= set(survey)  # iron-rich stars all kept
    val = stage_rows(s, StageConfig(mix="survey"), "val")
    assert np.array_equal(val, stage_rows(s, StageConfig(), "val"))  # validation keeps the store's stars


def test_real_store_reads_aspcapstar_files_and_allstar_labels(tmp_path):
    from astropy.io import fits
    from astropy.table import Table

    from pipeline.spectrafm.aspcap import N_APSTAR

    ids = ["2M00000001+0000001", "2M00000002+0000002", "2M00000003+0000003"]
    rng = np.random.default_rng(0)
    for k, i in enumerate(ids):
        flux = 1 - 0.1 * rng.random(N_APSTAR)
        flux[:246] = 0  # outside the chips: zeros, as in apStar-grid files
        hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(a.astype(np.float32)) for a in (flux, np.full(N_APSTAR, 0.01), flux + 0.001 * k)]
        hdus[1].header.update({"CRVAL1": 4.179, "CDELT1": 6e-6})
        fits.HDUList(hdus).writeto(tmp_path / f"aspcapStar-dr17-{i}.fits")
    cols = {"APOGEE_ID": ids[::-1] + ["2M_other"]}
    for c in ("TEFF", "LOGG", "FE_H", "O_FE", "MG_FE"):
        cols[c] = [4500.0 + j for j in range(4)] if c == "TEFF" else [0.1 * j for j in range(4)]
        cols[c + "_ERR"] = [0.01] * 4
    Table(cols).write(tmp_path / "allStar.fits")
    build_real_store(
        sorted(tmp_path.glob("aspcapStar-*.fits")), tmp_path / "allStar.fits", tmp_path / "real.zarr", split=(1 / 3, 1 / 3, 1 / 3)
    )
    s = SpectraStore(tmp_path / "real.zarr")
    assert s.root["observed"].shape == (3, 7514) and s.root.attrs["source"] == "aspcapStar"
    assert s.stars.apogee_id.tolist() == ids and s.stars.teff.tolist() == [4502.0, 4501.0, 4500.0]  # joined by APOGEE_ID
    assert np.allclose(s.read("synthetic", [2], np.arange(7514)), s.read("observed", [2], np.arange(7514)) + 0.002, atol=1e-6)
    assert "fe_h_err" in s.stars and s.wavelength_aa[0] == pytest.approx(10 ** (4.179 + 6e-6 * 246))
    Table({k: v[1:] for k, v in cols.items()}).write(tmp_path / "allStar_short.fits")
    with pytest.raises(ValueError, match="no allStar row"):
        build_real_store(sorted(tmp_path.glob("aspcapStar-*.fits")), tmp_path / "allStar_short.fits", tmp_path / "x.zarr")


# -- the model -------------------------------------------------------------------------------------------
def test_wavelength_encoding_by_hand_and_against_numpy():
    from pipeline.spectrafm.encoding import wavelength_encoding as np_encoding

    lam = torch.tensor([15000.0, 16000.0, 16543.21])
    pe = wavelength_encoding(lam, 8, 15000.0, 17000.0)
    assert pe[0].tolist() == pytest.approx([0, 1, 0, 1, 0, 1, 0, 1])  # lambda_min: sin 0, cos 0
    assert pe[1, 0].item() == pytest.approx(math.sin(500.0), abs=1e-6)  # 1000 * 0.5 / 10000^0
    assert pe[1, 3].item() == pytest.approx(math.cos(500.0 / 10000 ** (2 / 8)), abs=1e-6)  # k = 3 pairs with k = 2
    assert np.allclose(pe.numpy(), np_encoding(lam.numpy(), 8), atol=1e-6)


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return SpectraFM(preset("tiny", context=32)).eval()


def test_pixels_are_a_set_told_apart_by_wavelength():
    m = _tiny_model()
    flux = 1 - 0.3 * torch.rand(2, 32)
    lam = torch.linspace(15500, 15510, 32).expand(2, 32)
    tid = torch.tensor([[3, 1]] * 2)
    ids, v, mask = pixel_tokens(flux)
    with torch.no_grad():
        a = m(ids, v, mask, tid, lam)[0]
        perm = torch.randperm(32)
        b = m(ids[:, perm], v[:, perm], mask[:, perm], tid, lam[:, perm])[0]  # same pixels, another order
        c = m(ids, v, mask, tid, lam + 40.0)[0]  # the same fluxes at other wavelengths
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)


def test_bad_pixels_are_masked_not_read():
    m = _tiny_model()
    flux = 1 - 0.3 * torch.rand(1, 32)
    lam = torch.linspace(15500, 15510, 32)[None]
    bad = flux.clone()
    bad[0, 5] = float("nan")
    tid = torch.tensor([[3]])
    with torch.no_grad():
        out = m(*pixel_tokens(bad), tid, lam)[0]
        keep = torch.arange(32) != 5
        ref = m(*pixel_tokens(flux[:, keep]), tid, lam[:, keep])[0]
    assert torch.isfinite(out).all() and torch.allclose(out, ref, atol=1e-5)


def test_chunks_cover_the_spectrum_with_the_last_one_ending_at_its_end():
    assert chunk_starts(1000, 256).tolist() == [0, 256, 512, 744]
    assert chunk_starts(512, 256).tolist() == [0, 256]
    assert chunk_starts(100, 256).tolist() == [0]


def test_freezing_stops_the_decoder_head_and_last_encoder_block():
    m = SpectraFM(preset("tiny"))
    names = freeze(m, ["decoder", "head", "encoder.-1"])
    assert names == ["decoder", "head", "encoder.-1"]
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert all(n.startswith(("decoder.", "head.", "encoder.1.")) for n in frozen)
    assert any(n.startswith("encoder.0.") for n, p in m.named_parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="unknown part"):
        freeze(m, ["attention"])


def test_near_lines_by_hand():
    lines = line_list()
    fe = lines.query("element == 'Fe' and real").wavelength_aa.iloc[0]
    w = np.sort(lines.wavelength_aa.to_numpy())
    k = np.argmax(np.diff(w))  # the widest gap between lines
    gap_middle = 0.5 * (w[k] + w[k + 1])
    assert near_lines([fe + 0.9, fe - 0.9], "Fe", lines).all()
    assert not near_lines([gap_middle], None, lines).any() and not near_lines([gap_middle], "Fe", lines).any()
    assert near_lines(np.array([[fe, gap_middle]]), "Fe", lines).tolist() == [[True, False]]  # any shape


# -- training stages, prediction, attention ----------------------------------------------------------
# The [Fe/H] transfer test's fine-tune: 100 observed stars with [Fe/H] > -1, one window, fe_h.
FE_STAGE = dict(spectra="observed", window_centre_aa=16165.0, targets=("fe_h",), n_stars=100, fe_h_min=-1.0, epochs=1, batch_size=25)


@pytest.fixture(scope="module")
def stages(mock_store):
    tmp, _ = mock_store
    store = tmp / "spectra.zarr"
    cfg = preset("tiny", context=64)
    train_stage(store, tmp / "pretrain", StageConfig(spectra="synthetic", epochs=2, batch_size=32, lr=2e-3), cfg)
    fe = {**FE_STAGE, "epochs": 2}
    train_stage(store, tmp / "finetune_fe", StageConfig(**fe, freeze=("decoder", "head", "encoder.-1")), init_from=tmp / "pretrain")
    train_fcnn(store, tmp / "fcnn", StageConfig(**{**fe, "epochs": 3}), FCNNConfig(hidden=(32, 32, 32)))
    return tmp


def test_a_fine_tune_keeps_the_frozen_parts_and_the_label_scale(stages):
    pre, pre_ck = load_model(stages / "pretrain")
    fe, fe_ck = load_model(stages / "finetune_fe")
    assert np.allclose(pre_ck["median"], fe_ck["median"]) and np.allclose(pre_ck["scale"], fe_ck["scale"])
    for name, p in fe.named_parameters():
        same = torch.equal(p, dict(pre.named_parameters())[name])
        assert same == name.startswith(("decoder.", "head.", "encoder.1.")), name
    assert fe_ck["stage"]["n_train"] == 100 and fe_ck["stage"]["pixels_aa"][0] < 16165 < fe_ck["stage"]["pixels_aa"][1]
    hist = pd.read_csv(stages / "finetune_fe/history.csv")
    assert list(hist.columns[:3]) == ["epoch", "train_loss", "val_loss"] and np.isfinite(hist.train_loss).all()


def test_the_100_star_fine_tune_sees_only_iron_rich_training_stars(stages):
    s = SpectraStore(stages / "spectra.zarr")
    from pipeline.spectrafm.train import stage_rows

    rows = stage_rows(s, StageConfig(targets=("fe_h",), n_stars=100, fe_h_min=-1.0), "train")
    assert rows.size == 100 and (s.stars.fe_h.to_numpy()[rows] > -1).all() and (s.stars.split.to_numpy()[rows] == "train").all()


def test_prediction_averages_the_chunks(stages):
    s = SpectraStore(stages / "spectra.zarr")
    cols = np.arange(1000, 1128)  # two chunks of 64
    flux = s.read("observed", np.arange(5), cols)
    lam = s.wavelength_aa[cols]
    whole = predict(stages / "pretrain", flux, lam)
    parts = [predict(stages / "pretrain", flux[:, k : k + 64], lam[k : k + 64]) for k in (0, 64)]
    for label in LABELS:
        assert np.allclose(whole[label][0], (parts[0][label][0] + parts[1][label][0]) / 2, rtol=1e-5, atol=1e-4)
        assert np.allclose(whole[label][1] ** 2, (parts[0][label][1] ** 2 + parts[1][label][1] ** 2) / 2, rtol=1e-4)


def test_a_job_without_validation_stars_logs_val_none_not_nan(mock_store, tmp_path, caplog):
    """The FCNN's 100 stars have no validation split: its progress says so instead of 'val nan'."""
    tmp, _ = mock_store
    with caplog.at_level(logging.INFO, logger="pipeline.engine"):
        _, history = train_fcnn(tmp / "spectra.zarr", tmp_path / "fcnn", StageConfig(**FE_STAGE), FCNNConfig(hidden=(8,)))
    lines = [r.getMessage() for r in caplog.records if "stars/s" in r.getMessage()]
    assert lines and all("val none" in line and "nan" not in line for line in lines), lines
    assert math.isnan(history[-1]["val_loss"])  # the history keeps the number: no validation loss


def test_fcnn_reads_its_window_and_refuses_others(stages):
    s = SpectraStore(stages / "spectra.zarr")
    model, ck = load_model(stages / "fcnn")
    assert isinstance(model, FCNN) and ck["config"].n_pixels == 512 and ck["config"].labels == ("fe_h",)
    cols = s.pixels_in(centre_aa=16165.0, n_pixels=512)
    out = predict(stages / "fcnn", s.read("observed", np.arange(4), cols), s.wavelength_aa[cols])
    assert set(out) == {"fe_h"} and np.isfinite(out["fe_h"][0]).all()
    with pytest.raises(ValueError, match="reads 512 pixels"):
        predict(stages / "fcnn", s.read("observed", np.arange(4), cols[:100]), s.wavelength_aa[cols[:100]])


def test_attention_read_out_is_a_distribution_over_pixels(stages):
    s = SpectraStore(stages / "spectra.zarr")
    cols = np.arange(7514)
    flux = s.read("synthetic", np.arange(6), cols)
    (summary, profile), (teff_summary, teff_profile) = attention(
        stages / "pretrain", flux, s.wavelength_aa, ["fe_h", "teff"], line_list(), top_k=3
    )
    assert summary["element"] == "Fe" and 0 <= summary["top_fraction_near_lines"] <= 1
    assert teff_summary["element"] == "any" and summary["random_fraction_near_lines"] < teff_summary["random_fraction_near_lines"]
    assert 0 < summary["random_fraction_near_lines"] < 0.5
    assert profile.shape == (7514,) and np.nanmean(profile) == pytest.approx(1.0, rel=0.05)  # 1 = uniform on average
    # both labels in one pass read out what each alone reads out (the decoder does not mix requests)
    [(alone, alone_profile)] = attention(stages / "pretrain", flux, s.wavelength_aa, ["teff"], line_list(), top_k=3)
    assert alone["random_fraction_near_lines"] == teff_summary["random_fraction_near_lines"]
    assert alone["top_fraction_near_lines"] == pytest.approx(teff_summary["top_fraction_near_lines"], abs=0.02)  # ties may reorder
    np.testing.assert_allclose(alone_profile, teff_profile, rtol=1e-5, atol=1e-6)


def _same_weights(a, b):
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=k)


def test_a_resumed_stage_and_fcnn_end_with_the_same_weights(mock_store, tmp_path):
    """Both train through the shared engine: interrupted after an epoch and resumed, bit for bit (1 thread)."""
    tmp, _ = mock_store
    store = tmp / "spectra.zarr"
    stage = StageConfig(spectra="synthetic", epochs=3, batch_size=32, lr=2e-3, threads=1, seed=3)
    cfg = preset("tiny", context=64, dropout=0.1)
    full, _ = train_stage(store, tmp_path / "full", stage, cfg)
    train_stage(store, tmp_path / "cut", stage, cfg, stop_after_epoch=0)
    assert not (tmp_path / "cut/model.pt").exists()  # an interrupted stage leaves no model a rule would take
    resumed, history = train_stage(store, tmp_path / "cut", stage, cfg)
    _same_weights(full, resumed)
    assert len(history) == 3 and (tmp_path / "cut/model.pt").exists()
    fe = StageConfig(
        spectra="observed", window_centre_aa=16165.0, targets=("fe_h",), n_stars=100, fe_h_min=-1.0, epochs=4, batch_size=25, threads=1
    )
    full, _ = train_fcnn(store, tmp_path / "fcnn_full", fe, FCNNConfig(hidden=(32, 32, 32)))
    train_fcnn(store, tmp_path / "fcnn_cut", fe, FCNNConfig(hidden=(32, 32, 32)), stop_after_epoch=1)
    resumed, _ = train_fcnn(store, tmp_path / "fcnn_cut", fe, FCNNConfig(hidden=(32, 32, 32)))
    _same_weights(full, resumed)


def test_data_parallel_spectrafm_stage_two_ranks_end_with_the_weights_of_one_process(mock_store, tmp_path):
    """A stage as 2 DDP ranks (gloo, a thread each) of batch 16 takes the steps of one process of batch 32."""
    tmp, _ = mock_store
    store = tmp / "spectra.zarr"
    stage = StageConfig(spectra="synthetic", epochs=2, batch_size=32, lr=2e-3, threads=1, seed=3)
    cfg = preset("tiny", context=64, dropout=0.0)
    one, h_one = train_stage(store, tmp_path / "one", stage, cfg)
    two, h_two = train_stage(store, tmp_path / "two", replace(stage, processes=2, threads=2), cfg)
    for (k, x), (_, y) in zip(one.state_dict().items(), two.state_dict().items()):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-5, msg=k)
    assert [round(h["val_loss"], 5) for h in h_one] == [round(h["val_loss"], 5) for h in h_two]
    assert (tmp_path / "two/model.pt").exists()


def test_split_settings_become_the_builders_keywords_and_a_partial_split_is_refused():
    from pipeline.spectrafm.store import split_keywords

    assert split_keywords({"train": 0.7, "val": 0.2, "test": 0.1, "seed": 3}) == {"split": (0.7, 0.2, 0.1), "split_seed": 3}
    assert split_keywords({"seed": 3}) == {"split_seed": 3} and split_keywords(None) == {}
    with pytest.raises(ValueError, match="missing"):
        split_keywords({"train": 0.9})
    with pytest.raises(ValueError, match=r"spectrafm\.split: unknown key\(s\) \['trian'\]"):
        split_keywords({"trian": 0.9})


def test_the_ablation_stage_is_finetune_fe_started_from_the_pre_trained_model():
    from pipeline.spectrafm.plan import ABLATION, stage_plan

    stages = {
        "pretrain": {"epochs": 15},
        "finetune_real": {"init": "pretrain", "range_aa": [15000, 16050]},
        "finetune_fe": {"init": "finetune_real", "n_stars": 100, "window_centre_aa": 16165, "freeze": ["decoder"], "seed": 3},
    }
    plan = stage_plan(stages)
    assert list(plan) == ["pretrain", "finetune_real", "finetune_fe", ABLATION]
    assert plan[ABLATION] == {**stages["finetune_fe"], "init": "pretrain"}  # everything else the same, its seed too
    assert stages["finetune_fe"]["init"] == "finetune_real"  # the configured stages are left as they are
    assert stage_plan({"pretrain": {}}) == {"pretrain": {}}  # no [Fe/H] fine-tune, no ablation
    with pytest.raises(ValueError, match=f"spectrafm.stages.{ABLATION}"):
        stage_plan({**stages, ABLATION: {}})
