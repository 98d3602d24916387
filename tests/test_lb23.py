"""The published network and its model format: parity with the reference code's own answers,
import and export, and the errors of folders we cannot read."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.model.api import StellarModel
from pipeline.model.lb23 import LB23FormatError, export_lb23, import_lb23, lb23_key, model_config
from pipeline.model.model import StellarTransformer

PUBLISHED = Path(__file__).resolve().parents[1].parent / "shared" / "lb23-published-format"
needs_published = pytest.mark.skipif(
    not (PUBLISHED / "weights.pt").is_file(), reason=f"{PUBLISHED} (a model folder in the reference code's format) is absent"
)

# Leung & Bovy's model_torch/config.json, nn_config of the published model
PUBLISHED_NN_CONFIG = {
    "backend_framewoark": "torch-2.1.0",
    "context_length": 64,
    "embedding_dim": 128,
    "embedding_activation": "gelu",
    "encoder_head_num": 16,
    "encoder_dense_num": 1024,
    "encoder_dropout_rate": 0.1,
    "encoder_activation": "gelu",
    "decoder_head_num": 16,
    "decoder_dense_num": 3096,
    "decoder_dropout_rate": 0.1,
    "decoder_activation": "gelu",
}


def test_the_published_nn_config_builds_8845529_parameters():
    cfg = model_config(PUBLISHED_NN_CONFIG, vocab_size=118)
    assert StellarTransformer(cfg).n_parameters() == 8_845_529


def test_state_dict_names_map_onto_the_reference_codes():
    names = {lb23_key(k) for k in StellarTransformer(model_config(PUBLISHED_NN_CONFIG, 118)).state_dict()}
    assert {
        "embedding_layer.embeddings",
        "torch_encoder.encoder_transformer_block_2.attention.bias_k",
        "torch_decoder.decoder_transformer_block_3.dense_2.weight",
        "torch_decoder.decoder_dense_6.bias",
        "torch_decoder.decoder_logvar_out.weight",
        "torch_encoder.encoder_transformer_block_1.layernorm_2.bias",
        "torch_decoder.decoder_transformer_block_1.attention.out_proj.weight",
    } <= names


def _reference_cases():
    return json.loads((PUBLISHED / "reference_answers.json").read_text())["cases"]


def _table(case):
    values = np.array([[np.nan if v is None else v for v in row] for row in case["inputs"]], float)
    return pd.DataFrame(values, columns=case["input_names"])


@needs_published
def test_imported_model_gives_the_reference_codes_answers(tmp_path):
    """Every value and error of three cases (8, 38, 64 inputs, ~15% NaN = not observed) within
    1e-4 of the token's _input_std, through StellarModel.load -> predict like a trained model."""
    meta = import_lb23(PUBLISHED, tmp_path / "m")
    ref = json.loads((PUBLISHED / "reference_answers.json").read_text())
    assert meta["n_parameters"] == ref["n_parameters"]
    model = StellarModel.load(tmp_path / "m", device="cpu")
    for case in ref["cases"]:
        table = _table(case)
        assert table.isna().to_numpy().any()  # the NaN-means-absent path is exercised
        out = model.predict(table, case["request"])
        for name, expected in case["expected"].items():
            token = name.removesuffix("_error")
            ours = out[f"{token}_err" if name.endswith("_error") else token].to_numpy()
            std = model.mad[model.token_index[token]]
            worst = np.max(np.abs(ours - np.asarray(expected, float))) / std
            assert worst < 1e-4, (len(case["input_names"]), name, worst)


@needs_published
def test_predict_cli_takes_the_imported_model(tmp_path):
    from pipeline.__main__ import main

    assert main(["import-lb23", str(PUBLISHED), str(tmp_path / "m")]) == 0
    case = _reference_cases()[0]
    _table(case).to_csv(tmp_path / "stars.csv", index=False)
    assert (
        main(
            [
                "predict",
                "--model",
                str(tmp_path / "m"),
                "--input",
                str(tmp_path / "stars.csv"),
                "--request",
                "teff",
                "logg",
                "--output",
                str(tmp_path / "out.csv"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    out = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(out["teff"], case["expected"]["teff"], rtol=0, atol=1e-4 * 1000)
    assert main(["import-lb23", str(PUBLISHED), str(tmp_path / "m")]) == 2  # never overwrites a model


@needs_published
def test_export_then_import_gives_identical_weights(tmp_path):
    import_lb23(PUBLISHED, tmp_path / "ours")
    config = export_lb23(tmp_path / "ours", tmp_path / "theirs")
    original = torch.load(PUBLISHED / "weights.pt", map_location="cpu", weights_only=True)["model_state_dict"]
    exported = torch.load(tmp_path / "theirs/weights.pt", map_location="cpu", weights_only=True)["model_state_dict"]
    assert set(exported) == set(original)
    for k in original:
        assert torch.equal(exported[k], original[k]), k
    published = json.loads((PUBLISHED / "config.json").read_text())
    assert config["tokenizer_config"] == published["tokenizer_config"]
    np.testing.assert_allclose(config["norm_config"]["_input_std"][1:], published["norm_config"]["_input_std"][1:])
    import_lb23(tmp_path / "theirs", tmp_path / "again")
    a = torch.load(tmp_path / "ours/model.pt", weights_only=True)
    b = torch.load(tmp_path / "again/model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


@needs_published
def test_a_permuted_vocabulary_moves_the_embedding_rows_with_it(tmp_path):
    """vocab_tokens need not follow the order of vocabs: rows and standardisation follow the ids."""
    src = tmp_path / "perm"
    shutil.copytree(PUBLISHED, src)
    cfg = json.loads((src / "config.json").read_text())
    vocab, ids = cfg["tokenizer_config"]["vocabs"], cfg["tokenizer_config"]["vocab_tokens"]
    order = np.random.default_rng(0).permutation(len(vocab))
    cfg["tokenizer_config"]["vocabs"] = [vocab[i] for i in order]
    cfg["tokenizer_config"]["vocab_tokens"] = [ids[i] for i in order]
    (src / "config.json").write_text(json.dumps(cfg))
    import_lb23(src, tmp_path / "m")
    model = StellarModel.load(tmp_path / "m", device="cpu")
    case = _reference_cases()[1]
    out = model.predict(_table(case), ["teff"])
    np.testing.assert_allclose(out["teff"], case["expected"]["teff"], rtol=1e-5)


@needs_published
def test_users_meet_the_same_semantics_and_clear_errors(tmp_path):
    import_lb23(PUBLISHED, tmp_path / "m")
    model = StellarModel.load(tmp_path / "m", device="cpu")
    with pytest.raises(ValueError, match="unknown token name"):
        model.predict(pd.DataFrame({"teff": [4800.0], "vmag": [12.0]}), ["logg"])
    with pytest.raises(ValueError, match="no observation at all"):  # the reference code would answer its prior
        model.predict(pd.DataFrame({"teff": [np.nan], "logg": [np.nan]}), ["m_h"])
    many = pd.DataFrame({t: [0.0] for t in model.vocab[:65]})
    with pytest.raises(ValueError, match="context of 64"):
        model.predict(many, ["teff"])


def _broken(tmp_path, edit):
    src = tmp_path / "src"
    shutil.copytree(PUBLISHED, src)
    cfg = json.loads((src / "config.json").read_text())
    edit(cfg, src)
    (src / "config.json").write_text(json.dumps(cfg))
    return src


@needs_published
@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c, s: c["nn_config"].update(embedding_dropout_rate=0.1), r"unknown key\(s\) \['embedding_dropout_rate'\]"),
        (lambda c, s: c["nn_config"].pop("decoder_dense_num"), r"nn_config lacks \['decoder_dense_num'\]"),
        (lambda c, s: c["nn_config"].update(decoder_activation="relu"), "one activation for all its parts"),
        (lambda c, s: c["nn_config"].update(encoder_head_num=3), "encoder_heads"),
        (lambda c, s: c["nn_config"].update(embedding_dim=48), r"embedding_layer.embeddings has shape|does not fit"),
        (
            lambda c, s: c["tokenizer_config"].update(
                vocabs=c["tokenizer_config"]["vocabs"][:-1] + ["mass", "age"], vocab_tokens=list(range(1, 120))
            ),
            r"norm_config._input_mean has 119 entries; the vocabulary needs 120",
        ),
        (lambda c, s: c["tokenizer_config"].update(vocab_tokens=[0] + c["tokenizer_config"]["vocab_tokens"][1:]), "the ids must be 1..118"),
        (lambda c, s: c["norm_config"]["_input_standardized"].__setitem__(5, False), "_input_standardized is false for"),
        (lambda c, s: c.pop("norm_config"), "no norm_config section"),
        (lambda c, s: (s / "weights.pt").write_bytes(b"not a checkpoint"), "weights.pt: not a torch checkpoint"),
    ],
)
def test_folders_we_cannot_read_get_an_error_naming_the_key(tmp_path, edit, message):
    with pytest.raises(LB23FormatError, match=message):
        import_lb23(_broken(tmp_path, edit), tmp_path / "out")
    assert not (tmp_path / "out" / "config.json").exists()  # nothing a rerun would take for a model


@needs_published
def test_a_vocabulary_that_disagrees_with_the_weights_is_refused(tmp_path):
    def add_token(c, s):
        c["tokenizer_config"]["vocabs"].append("mass")
        c["tokenizer_config"]["vocab_tokens"].append(119)
        for k in ("_input_mean", "_input_std", "_input_standardized"):
            c["norm_config"][k].append(c["norm_config"][k][-1])

    with pytest.raises(LB23FormatError, match=r"has 119 rows; the vocabulary of .* has 119 tokens"):
        import_lb23(_broken(tmp_path, add_token), tmp_path / "out")


@needs_published
def test_train_import_from_runs_the_evaluation_on_the_published_model(tiny_run, tmp_path):
    """With train.import_from the base model is imported (rule import_model), not trained, and the
    rules that take a model (held-out check, an evaluation task) run on it."""
    import yaml

    from conftest import CORES, run_snakemake

    src, _ = tiny_run
    for part in ("sky", "results"):
        shutil.copytree(src / part, tmp_path / part, symlinks=True)
    cfg = tmp_path / "import.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"paths": {"mock_sky": str(tmp_path / "sky"), "results": str(tmp_path / "results")}, "train": {"import_from": str(PUBLISHED)}}
        )
    )
    args = (*CORES, "--configfile", "configs/tiny.yaml", str(cfg))
    # the copy carries no Snakemake metadata of its own paths: start the base model's folder afresh, as a
    # user's folder would be (there, the changed rule and params of the model rerun it by themselves)
    shutil.rmtree(tmp_path / "results/models/tiny")
    targets = ["--", str(tmp_path / "results/models/tiny/heldout.json"), str(tmp_path / "results/eval/spectra_to_parameters/metrics.json")]
    proc = run_snakemake(*args, *targets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "rule import_model" in log and "rule train:" not in log, log[-3000:]
    meta = json.loads((tmp_path / "results/models/tiny/config.json").read_text())
    assert meta["imported_from"]["path"] == str(PUBLISHED) and meta["n_parameters"] == 48_250
    metrics = json.loads((tmp_path / "results/eval/spectra_to_parameters/metrics.json").read_text())
    assert metrics  # the task ran on the imported (random-weight) model
