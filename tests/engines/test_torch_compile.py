"""torch.compile: one compiled decode step over a static cache, reused across prompt lengths."""

import pytest

from serving_energy.engines.torch_compile_engine.engine import (
    CACHE_BLOCK_TOKENS,
    cache_length_for,
    compiled_graph_count,
)

from .conftest import NEW_TOKENS, PROMPTS


def test_the_cache_length_is_the_next_block():
    assert cache_length_for(1) == CACHE_BLOCK_TOKENS
    assert cache_length_for(CACHE_BLOCK_TOKENS) == CACHE_BLOCK_TOKENS
    assert cache_length_for(CACHE_BLOCK_TOKENS + 1) == 2 * CACHE_BLOCK_TOKENS
    with pytest.raises(ValueError, match="total_tokens"):
        cache_length_for(0)


def test_a_new_prompt_length_triggers_no_recompilation(engines):
    """prepare_for (the server's load) compiles the decode step; requests of other prompt lengths
    in the same cache block run that graph (the prefill is eager), and give torch's ids."""
    compiled, torch_engine = engines("llama", "torch_compile"), engines("llama", "torch")
    compiled.prepare_for(1 + NEW_TOKENS)
    assert compiled.cache_lengths == [CACHE_BLOCK_TOKENS]
    lengths = set()
    for prompt in ("x", PROMPTS[0], "def f():\n    return [i * i for i in range(10) if i % 2]"):
        before = compiled_graph_count()
        got = compiled.generate(prompt, NEW_TOKENS)
        assert compiled_graph_count() == before, (
            f"recompiled for a {got.prompt_tokens}-token prompt"
        )
        assert got.new_token_ids == torch_engine.generate(prompt, NEW_TOKENS).new_token_ids
        lengths.add(got.prompt_tokens)
    assert len(lengths) == 3
    details = compiled.info().details
    assert details["compilations_after_load"] == 0
    # compile_s is 0 here when an earlier test's request already ran this block
    assert details["compile"]["fullgraph"] is True and details["compile_s"] >= 0
    assert details["inductor"]["max_autotune"] is False


def test_its_sequence_logits_come_from_the_compiled_decode(engines):
    """Teacher-forced through generate(): the compiled step's logits at every position, within
    fp32 noise of torch's full pass over the same ids."""
    import numpy as np

    compiled, torch_engine = engines("phi", "torch_compile"), engines("phi", "torch")
    ids = torch_engine.encode(PROMPTS[1]) + [5, 6, 7]
    mine, reference = compiled.sequence_logits(ids), torch_engine.sequence_logits(ids)
    assert mine.shape == reference.shape
    scale = float(np.max(np.abs(reference)))
    assert float(np.max(np.abs(mine - reference))) < 1e-4 * max(1.0, scale)


def test_an_unknown_mode_is_named(standin_dirs):
    from serving_energy.engines import load_engine

    with pytest.raises(ValueError, match="unknown torch_compile mode 'fastest'"):
        load_engine("torch_compile", "cpu", standin_dirs["gpt2"], None, 1, {"mode": "fastest"})


def test_prepare_for_compiles_the_studys_block_at_load(standin_dirs):
    """The server calls prepare_for with the study's request length: that block is compiled
    then, not in the first request, and a request in it compiles nothing."""
    from serving_energy.engines import load_engine

    engine = load_engine("torch_compile", "cpu", standin_dirs["gpt2"], None, 1)
    assert engine.cache_lengths == []  # loading compiles nothing: the server's prepare_for does
    engine.prepare_for(CACHE_BLOCK_TOKENS + 10)
    assert engine.cache_lengths == [2 * CACHE_BLOCK_TOKENS]
    assert engine.info().details["compile_s"] > 0
    before = compiled_graph_count()
    engine.generate(PROMPTS[0], CACHE_BLOCK_TOKENS)  # prompt + new tokens: the second block
    assert compiled_graph_count() == before
    assert engine.info().details["compilations_after_load"] == 0
