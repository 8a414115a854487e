import json

import pytest
from safetensors.numpy import load_file

from serving_energy.data.standins import ARCHITECTURES, build_standin, read_standin_info

from .conftest import TINY


def test_every_architecture_is_built_with_its_geometry(standin_dirs):
    from transformers import AutoConfig

    expected_kv_heads = {"gpt_bigcode": 1, "llama": 2, "gemma": 1}
    for architecture, model_dir in standin_dirs.items():
        info = read_standin_info(model_dir)
        assert info["standin"] is True
        assert info["architecture"] == architecture
        assert (info["n_layers"], info["hidden_size"], info["n_heads"]) == (2, 64, 4)
        assert info["vocab_size"] == 50257 and info["tokenizer"] == TINY["tokenizer"]
        assert info["n_kv_heads"] == expected_kv_heads.get(architecture, 4)
        # 50257 x 64 = 3.2 M is the embedding, twice where the head is untied
        assert 3_300_000 < info["n_parameters"] < 6_700_000
        config = AutoConfig.from_pretrained(model_dir)
        assert config.model_type == architecture
        assert config.initializer_range == 0.2
        assert (model_dir / "model.safetensors").is_file()
    assert set(standin_dirs) == set(ARCHITECTURES)


def test_architecture_specifics(standin_dirs):
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(standin_dirs["gpt_bigcode"]).multi_query is True
    assert AutoConfig.from_pretrained(standin_dirs["gpt_neox"]).rotary_pct == 0.25
    assert AutoConfig.from_pretrained(standin_dirs["phi"]).partial_rotary_factor == 0.5
    assert AutoConfig.from_pretrained(standin_dirs["gemma"]).head_dim == 16


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    def weights(seed, name):
        build_standin("llama", tmp_path / name, **{**TINY, "seed": seed})
        return load_file(tmp_path / name / "model.safetensors")

    first, again, other = weights(0, "a"), weights(0, "b"), weights(1, "c")
    assert all((first[k] == again[k]).all() for k in first)
    assert any((first[k] != other[k]).any() for k in first)


def test_gpt2_tokenizer_standin_has_gpt2_vocabulary(tmp_path):
    info = build_standin(
        "gpt2", tmp_path / "m", n_layers=1, hidden_size=32, n_heads=2, tokenizer="gpt2", seed=0
    )
    assert info.vocab_size == 50257
    saved = json.loads((tmp_path / "m" / "standin.json").read_text())
    assert saved["tokenizer"] == "gpt2" and saved["standin"] is True


def test_bad_requests_are_named(tmp_path):
    with pytest.raises(ValueError, match="mamba"):
        build_standin("mamba", tmp_path / "x", n_layers=1, hidden_size=64, n_heads=4)
    with pytest.raises(ValueError, match="heads"):
        build_standin("gpt2", tmp_path / "y", n_layers=1, hidden_size=64, n_heads=5)
