"""The paper's geometries: stand-ins built at them have the published models' size."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serving_energy.data.standins import build_standin, count_parameters, standin_config
from serving_energy.data.tokenizers_offline import build_tokenizer, pad_tokenizer
from serving_energy.study.geometries import GEOMETRIES, resolve_standin_spec

PAPER_GEOMETRY = Path(__file__).resolve().parents[1] / "config" / "paper-geometry.yaml"
PAPER = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def _meta_parameters(spec: dict) -> int:
    geometry = {
        k: v
        for k, v in spec.items()
        if k
        not in ("architecture", "geometry", "config", "tokenizer", "tokenizer_vocab_size", "seed")
    }
    config = standin_config(
        spec["architecture"], geometry, vocab_size=spec["vocab_size"], extra=spec["config"]
    )
    return count_parameters(config)


def test_paper_geometry_study_has_the_papers_models_at_their_geometry():
    paper = yaml.safe_load(PAPER.read_text())
    rehearsal = yaml.safe_load(PAPER_GEOMETRY.read_text())
    assert list(rehearsal["models"]) == list(paper["models"])
    for alias, model in rehearsal["models"].items():
        assert model["size_category"] == paper["models"][alias]["size_category"]
        assert model["standin"]["geometry"] == alias
    assert rehearsal["configurations"] == paper["configurations"]
    assert rehearsal["repetitions"] == paper["repetitions"]
    assert rehearsal["protocol"] == paper["protocol"]


@pytest.mark.parametrize("alias", sorted(GEOMETRIES))
def test_a_standin_at_each_geometry_has_the_published_parameter_count(alias):
    rehearsal = yaml.safe_load(PAPER_GEOMETRY.read_text())
    spec = resolve_standin_spec(rehearsal["models"][alias]["standin"])
    published = GEOMETRIES[alias].published_parameters
    built = _meta_parameters(spec)
    assert abs(built / published - 1) <= 0.03, (alias, built, published)
    # The config's rounded count says the same model (and the size category follows from it).
    paper = yaml.safe_load(PAPER.read_text())["models"][alias]
    assert abs(paper["parameters"] / published - 1) <= 0.03, (alias, paper["parameters"])


def test_the_extreme_vocabularies_are_the_models_not_the_tokenizers():
    for alias, vocabulary in (("bloomz-560m", 250880), ("codegemma-2b", 256000)):
        spec = resolve_standin_spec({"geometry": alias, "tokenizer": "gpt2"})
        assert spec["vocab_size"] == vocabulary
    # bloom-560m's output layer (tied to its embedding) is about 257 M of its 559 M parameters.
    assert 250880 * 1024 == 256_901_120


def test_fields_beside_a_geometry_override_it():
    spec = resolve_standin_spec({"geometry": "pythia-1.4b", "layers": 2, "config": {"x": 1}})
    assert spec["layers"] == 2 and spec["hidden_size"] == 2048 and spec["rotary_fraction"] == 0.25
    assert spec["config"] == {"use_parallel_residual": True, "x": 1}


@pytest.mark.parametrize(
    ("standin", "named"),
    [
        ({"architecture": "bloom", "intermediate_size": 100}, "intermediate_size"),
        ({"architecture": "gpt2", "rotary_fraction": 0.5}, "rotary_fraction"),
        ({"architecture": "gpt_neox", "kv_heads": 2}, "kv_heads"),
        ({"architecture": "gpt_bigcode", "heads": 4, "kv_heads": 2}, "kv_heads"),
        ({"architecture": "llama", "heads": 4, "kv_heads": 3}, "kv_heads"),
        ({"architecture": "gpt2", "head_dim": 32}, "head_dim"),
        ({"geometry": "phi-2", "architecture": "llama"}, "contradicts"),
        ({"layers": 2}, "architecture"),
        ({"architecture": "gpt2", "rotary": 0.5}, "rotary"),
    ],
)
def test_a_geometry_that_cannot_be_built_names_its_field(standin, named):
    with pytest.raises(ValueError, match=named):
        resolve_standin_spec(standin)


def test_an_unknown_config_field_is_named(tmp_path):
    with pytest.raises(ValueError, match="no_such_field"):
        standin_config("gpt2", {}, vocab_size=4096, extra={"no_such_field": 1})


def test_a_padded_tokenizer_encodes_as_before_and_decodes_every_id():
    tokenizer = build_tokenizer("bpe-humaneval")
    padded = pad_tokenizer(tokenizer, 6000)
    text = "def has_close_elements(numbers, threshold):\n    return <|pad|> x"
    assert len(padded) == 6000
    assert padded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert (padded.eos_token_id, padded.pad_token_id) == (
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    decoded = [padded.decode([i]) for i in range(len(tokenizer) - 2, 6000)]
    assert all(decoded) and len(set(decoded)) == len(decoded)
    with pytest.raises(ValueError, match="down"):
        pad_tokenizer(tokenizer, 100)


def test_a_standin_with_a_larger_vocabulary_and_its_own_geometry(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    info = build_standin(
        "llama",
        tmp_path / "m",
        n_layers=1,
        hidden_size=64,
        n_heads=4,
        vocab_size=5000,
        tokenizer="bpe-humaneval",
        tokenizer_vocab_size=1024,
        kv_heads=1,
        head_dim=32,
        intermediate_size=96,
        tied_embeddings=True,
    )
    config = AutoConfig.from_pretrained(tmp_path / "m")
    assert (config.vocab_size, config.num_key_value_heads, config.head_dim) == (5000, 1, 32)
    assert (config.intermediate_size, config.tie_word_embeddings) == (96, True)
    assert len(AutoTokenizer.from_pretrained(tmp_path / "m")) == 5000
    assert info.vocab_size == 5000 and info.tokenizer_vocab_size == 1024
    assert info.geometry["head_dim"] == 32 and info.n_kv_heads == 1
    with pytest.raises(ValueError, match="smaller than"):
        build_standin(
            "gpt2", tmp_path / "n", n_layers=1, hidden_size=32, n_heads=2, vocab_size=1000
        )
