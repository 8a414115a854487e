from serving_energy.data.tokenizers_offline import (
    build_tokenizer,
    offline_gpt2_tokenizer,
    train_humaneval_bpe,
)


def test_gpt2_tokenizer_reproduces_gpt2_ids():
    tokenizer = offline_gpt2_tokenizer()
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]
    assert tokenizer(" def foo(x):")["input_ids"] == [825, 22944, 7, 87, 2599]
    assert len(tokenizer) == 50257
    assert tokenizer.eos_token_id == tokenizer.bos_token_id == tokenizer.pad_token_id == 50256


def test_tokenizers_emit_no_token_type_ids():
    for tokenizer in (offline_gpt2_tokenizer(), train_humaneval_bpe(512)):
        assert set(tokenizer("x = 1")) == {"input_ids", "attention_mask"}


def test_humaneval_bpe_is_deterministic_with_separate_pad():
    first, second = train_humaneval_bpe(1024), train_humaneval_bpe(1024)
    assert len(first) == 1024
    assert first.get_vocab() == second.get_vocab()
    assert first.eos_token_id == first.bos_token_id == 0
    assert first.pad_token_id == 1
    text = "def add(a, b):\n    return a + b\n"
    assert first.decode(first(text)["input_ids"]) == text


def test_unknown_tokenizer_is_named():
    import pytest

    with pytest.raises(ValueError, match="sentencepiece"):
        build_tokenizer("sentencepiece")
