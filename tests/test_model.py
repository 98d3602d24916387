"""The stellar Transformer: architecture, sampler, loss, exact resumption, inference API and CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tiny_store as _tiny_store
from pipeline.model.model import StellarTransformer, preset
from pipeline.model.train import TrainConfig, train
from pipeline.tokens.vocab import BASE_VOCABULARY, vocabulary


def test_paper_preset_is_the_published_network_of_8845529_parameters():
    # Leung & Bovy's model_torch/config.json: embedding 128, 16 heads, dense 1024 / 3096, 118 tokens
    assert StellarTransformer(preset("paper")).n_parameters() == 8_845_529


def test_heads_and_widths_halve_block_to_block_as_in_the_published_code():
    m = StellarTransformer(preset("paper"))
    assert [b.attn.n_heads for b in m.encoder] == [16, 8] and [b.ffn1.out_features for b in m.encoder] == [1024, 512]
    assert [b.attn.n_heads for b in m.decoder] == [16, 8, 4] and [b.ffn1.out_features for b in m.decoder] == [3096, 1548, 774]
    assert [layer.out_features for layer in m.head.layers] == [3096, 1548, 774, 387]
    assert not hasattr(m.decoder[0], "self_attn")  # decoder blocks are the encoder's block, as query -> star


def test_embedding_applies_the_activation_after_the_bias():
    torch.manual_seed(0)
    m = StellarTransformer(preset("tiny")).eval()
    ids, vals, mask = torch.tensor([[3]]), torch.tensor([[0.7]]), torch.tensor([[True]])
    w, b = m.embedding.weight[4], m.embedding.bias[4]  # vocabulary index 3 is row 4; row 0 is padding
    torch.testing.assert_close(m.embed(ids, vals, mask)[0, 0], torch.nn.functional.gelu(w * 0.7 + b))
    assert m.embed(ids, vals, ~mask).abs().max() == 0  # padding embeds to zero


def test_fused_attention_equals_explicit_weights_with_the_bias_key_value():
    torch.manual_seed(0)
    m = StellarTransformer(preset("tiny")).eval()
    ids = torch.tensor([[3, 7, 110, 113, 0]])
    vals = torch.tensor([[0.5, -1.0, 0.2, 1.3, 0.0]])
    mask = torch.tensor([[True, True, True, True, False]])
    memory = m.encode(ids, vals, mask)
    a = m.decode(memory, mask, torch.tensor([[113, 115]]))
    b = m.decode(memory, mask, torch.tensor([[113, 115]]), need_weights=True)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    w = b[2]  # (stars, requests, blocks, n): renormalised over the star's tokens, none on padding
    assert w.shape == (1, 2, 3, 5) and float(w[..., 4].abs().max()) == 0
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 2, 3))


def test_tiny_preset_is_under_100k_parameters():
    assert StellarTransformer(preset("tiny")).n_parameters() < 100_000


def test_config_errors_name_the_field():
    from pipeline.model.model import ModelConfig

    with pytest.raises(ValueError, match="decoder_heads"):
        preset("tiny", decoder_heads=6)  # halves to 3, which does not divide 32
    with pytest.raises(ValueError, match="activation"):
        preset("tiny", activation="swish")
    with pytest.raises(ValueError, match=r"n_heads"):
        ModelConfig.from_dict({**preset("tiny").to_dict(), "n_heads": 4})


def test_answers_do_not_depend_on_input_order_or_padding():
    torch.manual_seed(0)
    m = StellarTransformer(preset("tiny")).eval()
    ids = torch.tensor([[3, 7, 110, 113, 0, 0]])
    vals = torch.tensor([[0.5, -1.0, 0.2, 1.3, 9.0, -9.0]])
    mask = torch.tensor([[True, True, True, True, False, False]])
    perm = torch.tensor([2, 0, 3, 1, 5, 4])
    req = torch.tensor([[113, 115]])
    a = m(ids, vals, mask, req)
    b = m(ids[:, perm], vals[:, perm], mask[:, perm], req)
    c = m(ids, torch.where(mask, vals, torch.full_like(vals, 123.0)), mask, req)  # padding values are ignored
    for x, y, z in zip(a, b, c):
        torch.testing.assert_close(x, y)
        torch.testing.assert_close(x, z)


def test_requests_are_answered_independently():
    torch.manual_seed(0)
    m = StellarTransformer(preset("tiny")).eval()
    ids, vals = torch.tensor([[3, 7, 110]]), torch.tensor([[0.5, -1.0, 0.2]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    both = m(ids, vals, mask, torch.tensor([[113, 115]]))[0]
    one = m(ids, vals, mask, torch.tensor([[115]]))[0]
    torch.testing.assert_close(both[:, 1:], one)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("model")
    path = _tiny_store(tmp, n=800)
    train(path, tmp / "m", preset("tiny"), TrainConfig(epochs_per_cycle=3, cycles=1, batch_size=64, threads=1), resume=False)
    return tmp / "m"


def test_model_folder_is_self_describing(trained):
    meta = json.loads((trained / "config.json").read_text())
    assert meta["vocabulary"] == list(vocabulary()) and len(meta["median"]) == 118
    assert meta["model"]["embed_dim"] == 32 and meta["held_out_outputs"] == ["bprp", "jk"]


def test_inference_api(trained):
    from pipeline.model.api import StellarModel

    m = StellarModel.load(trained, device="cpu")
    table = pd.DataFrame(
        {"bp0": [0.1, -0.3, np.nan], "rp1": [0.2, 0.0, 0.5], "teff": [np.nan, 5000.0, np.nan], "teff_err": [np.nan, 50.0, np.nan]}
    )
    out = m.predict(table, ["teff", "logg"], batch_size=2)
    assert list(out.columns) == ["teff", "teff_err", "logg", "logg_err"] and len(out) == 3
    assert (out.teff_err > 0).all() and np.isfinite(out.to_numpy()).all()
    stars = m.perceive(table[["bp0", "rp1", "teff"]])
    assert stars.tokens[1] == ["bp0", "rp1", "teff"] and stars.tokens[2] == ["rp1"]
    again = m.request(stars, ["logg", "teff"])
    np.testing.assert_allclose(again.teff, out.teff, rtol=1e-5)
    res, attn = m.request(stars, ["teff"], return_attention=True)
    assert attn.shape == (3, 1, 3, 3) and np.allclose(attn.sum(-1), 1.0, atol=1e-5)  # 3 decoder blocks
    assert attn[2, 0, :, 1:].max() == 0.0  # padding gets no attention
    mc = m.predict(table, ["logg"], n_mc=8)
    assert (mc.logg_err >= out.logg_err - 1e-6).all()
    with pytest.raises(ValueError, match="unknown token name"):
        m.predict(pd.DataFrame({"colour_of_the_sky": [1.0]}), ["teff"])
    with pytest.raises(ValueError, match="unknown token name"):
        m.predict(table, ["age_of_the_universe"])
    many = pd.DataFrame({t: [0.1] for t in vocabulary()[:70]})
    with pytest.raises(ValueError, match="more than the model's context of 64"):
        m.predict(many, ["teff"])


def test_cli_predict(trained, tmp_path):
    from pipeline.__main__ import main

    pd.DataFrame({"bp0": [0.1, 0.2], "jh": [0.5, 0.6], "name": ["a", "b"]}).to_csv(tmp_path / "in.csv", index=False)
    assert (
        main(
            [
                "predict",
                "--model",
                str(trained),
                "--input",
                str(tmp_path / "in.csv"),
                "--request",
                "teff",
                "m_h",
                "--output",
                str(tmp_path / "out.csv"),
            ]
        )
        == 0
    )
    out = pd.read_csv(tmp_path / "out.csv")
    assert {"teff", "teff_err", "m_h", "m_h_err"} <= set(out.columns) and len(out) == 2
    assert list(out.columns[:1]) == ["name"] and list(out.name) == ["a", "b"]  # each answer beside its star; no index column
    assert (
        main(
            [
                "predict",
                "--model",
                str(trained),
                "--input",
                str(tmp_path / "in.csv"),
                "--request",
                "nope",
                "--output",
                str(tmp_path / "o2.csv"),
            ]
        )
        == 2
    )


def test_many_requests_in_one_pass_equal_one_request_at_a_time():
    """StellarModel.predict answers r requests as r queries of one decoder pass (the encoder's keys
    and values once per block); the answers equal r separate calls to 1e-5 (float32, CPU)."""
    from pipeline.model.api import StellarModel

    torch.manual_seed(0)
    net = StellarTransformer(preset("small", dropout=0.0))
    vocab = list(BASE_VOCABULARY)
    meta = {"vocabulary": vocab, "median": [0.0] * len(vocab), "mad_std": [1.0] * len(vocab), "model": net.cfg.to_dict()}
    model = StellarModel(net, meta, "cpu")
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(300, 63)), columns=vocab[:63])
    table[rng.random(table.shape) < 0.3] = np.nan  # 1 to 63 inputs per star
    table.iloc[:, 0] = rng.normal(size=300)
    asked = ["teff", "logg", "m_h", "bp0", "jh", "g_fakemag", "rp5", "logebv", "jk", "bprp"]
    together = model.predict(table, asked, batch_size=128)
    for t in asked:
        alone = model.predict(table, [t], batch_size=128)
        np.testing.assert_allclose(together[[t, f"{t}_err"]].to_numpy(), alone.to_numpy(), rtol=1e-5, atol=1e-5)


def test_a_hub_export_loads_anywhere_and_answers_alike(trained, tmp_path, capsys):
    """`python -m pipeline export --format hub`: config.json, model.safetensors (no pickle) and a model
    card with front matter and the weights' checksum; StellarModel.load and predict read it alike."""
    import hashlib

    from pipeline.__main__ import main
    from pipeline.model.api import StellarModel

    out = tmp_path / "my-stellar-model"
    assert main(["export", str(trained), str(out), "--no-mock"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense:") and "library_name: pytorch" in card and "## Intended use and limitations" in card
    assert hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest() in card
    assert "Not in this card: the evaluation" in card  # this model has no run beside it
    ours, theirs = StellarModel.load(trained), StellarModel.load(out)
    for a, b in zip(ours.net.state_dict().values(), theirs.net.state_dict().values()):
        assert torch.equal(a, b)
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"bp0": rng.normal(0.5, 0.1, 20), "rp0": rng.normal(0.5, 0.1, 20), "bprp": rng.normal(1.2, 0.2, 20)})
    pd.testing.assert_frame_equal(ours.predict(table, ["teff", "logg"]), theirs.predict(table, ["teff", "logg"]))
    assert main(["export", str(trained), str(out)]) == 2  # a folder that holds a model is not overwritten
    assert "already holds" in capsys.readouterr().err


def test_the_periodic_value_encoding_is_an_option_the_published_network_lacks():
    """value_frequencies > 0 (issue 45's remedy, a departure): the embedding gains a periodic encoding
    of each value; padding still embeds to zero, two close values embed apart, and every preset, the
    published one first, leaves it off."""
    import torch

    from pipeline.model.model import PRESETS, StellarTransformer, preset

    assert all(preset(name).value_frequencies == 0 for name in PRESETS)
    torch.manual_seed(0)
    m = StellarTransformer(preset("tiny", value_frequencies=8, value_frequency_scale=5.0))
    rows = torch.tensor([[4, 4, 0]])
    y = m.embedding(rows, torch.tensor([[0.500, 0.501, 0.7]]))
    assert torch.all(y[0, 2] == 0)  # padding
    plain = StellarTransformer(preset("tiny")).embedding(rows, torch.tensor([[0.500, 0.501, 0.7]]))
    gap = lambda e: float((e[0, 0] - e[0, 1]).norm() / e[0, 0].norm())  # noqa: E731
    assert gap(y) > gap(plain)  # the fine digit moves the embedding further than w M alone does
    assert m.n_parameters() == StellarTransformer(preset("tiny")).n_parameters() + 119 * 8 + (16 * 32 + 32)
