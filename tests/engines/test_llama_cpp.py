"""llama.cpp: the GGUF export (its converter, its refusals), the engine's context and weight type.

Its ids against torch's, its logits, info and thread handling are in the parametrized engine
tests (test_engines_cpu, test_equivalence, test_export), as for every engine.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from serving_energy.engines.export import ExportError
from serving_energy.engines.llama_cpp_engine import converter
from serving_energy.engines.llama_cpp_engine.engine import CONTEXT_BLOCK_TOKENS
from serving_energy.engines.llama_cpp_engine.spec import LlamaCppOptions

from .conftest import NEW_TOKENS, PROMPTS, THREADS, TINY, cpu_export


def test_a_tokenizer_the_converter_does_not_know_fails_the_export_with_the_reason(tmp_path):
    from serving_energy.data.standins import build_standin

    model = tmp_path / "bpe-model"
    build_standin("gpt2", model, **{**TINY, "tokenizer": "bpe-humaneval"})
    with pytest.raises(ExportError, match="tokenizer gpt2 only, not 'bpe-humaneval'"):
        cpu_export("llama_cpp", model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_gemma_standin_is_refused_with_the_reason(standin_dirs, tmp_path):
    with pytest.raises(ExportError, match="SentencePiece tokenizer.model"):
        cpu_export("llama_cpp", standin_dirs["gemma"], tmp_path / "out")


def test_the_converters_own_failure_is_reported_with_its_last_lines(tmp_path, standin_dirs):
    """A model the converter cannot convert (here a class it does not know): the export fails,
    naming the converter's status and its last lines, and leaves nothing."""
    import shutil

    broken = tmp_path / "unknown-class"
    shutil.copytree(standin_dirs["gpt2"], broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(
        json.dumps({**config, "architectures": ["NoSuchModelForCausalLM"]})
    )
    with pytest.raises(ExportError, match=r"(?s)exited with status \d+.*NoSuchModelForCausalLM"):
        cpu_export("llama_cpp", broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_gpt2s_missing_n_ctx_is_added_for_the_converter_only(artefact_dirs, standin_dirs):
    export = json.loads((artefact_dirs["gpt2", "llama_cpp"] / "export.json").read_text())
    assert export["details"]["config_fields_added"] == {"n_ctx": 1024} or (
        "n_ctx" in json.loads((standin_dirs["gpt2"] / "config.json").read_text())
    )
    assert "n_ctx" not in json.loads((standin_dirs["gpt2"] / "config.json").read_text())
    assert export["details"]["weight_type"] == "f32"


def test_a_q8_0_export_is_smaller_and_recorded(standin_dirs, artefact_dirs, tmp_path):
    from serving_energy.engines import load_engine

    out = tmp_path / "q8"
    cpu_export("llama_cpp", standin_dirs["llama"], out, weight_type="q8_0")
    f32 = artefact_dirs["llama", "llama_cpp"] / "model.gguf"
    assert (out / "model.gguf").stat().st_size < 0.5 * f32.stat().st_size
    engine = load_engine(
        "llama_cpp", "cpu", standin_dirs["llama"], out, THREADS, {"weight_type": "q8_0"}
    )
    info = engine.info()
    assert info.compute_precision == "q8_0"
    assert info.precision_settings["weight_type"] == "q8_0"
    assert engine.generate(PROMPTS[0], NEW_TOKENS).new_tokens == NEW_TOKENS


def test_a_gguf_of_another_weight_type_than_the_config_is_refused(standin_dirs, artefact_dirs):
    from serving_energy.engines import load_engine
    from serving_energy.engines.base import EngineError

    with pytest.raises(EngineError, match="f32 GGUF, but engines.llama_cpp.weight_type is 'f16'"):
        load_engine(
            "llama_cpp",
            "cpu",
            standin_dirs["llama"],
            artefact_dirs["llama", "llama_cpp"],
            THREADS,
            {"weight_type": "f16"},
        )


def test_an_unknown_weight_type_is_named():
    with pytest.raises(ValueError, match="unknown llama_cpp weight_type 'q3'"):
        LlamaCppOptions("q3")


def test_the_context_grows_for_longer_requests_and_a_late_growth_is_counted(engines):
    engine = engines("llama", "llama_cpp")
    start = engine.context_tokens
    assert start == CONTEXT_BLOCK_TOKENS
    engine.prepare_for(CONTEXT_BLOCK_TOKENS + 1)
    assert engine.context_tokens == 2 * CONTEXT_BLOCK_TOKENS
    assert engine.info().details["context_resizes_after_prepare"] == 0
    long_prompt = "x = 1\n" * 400  # over 1024 tokens with the new ones
    assert len(engine.encode(long_prompt)) + NEW_TOKENS > 2 * CONTEXT_BLOCK_TOKENS
    got = engine.generate(long_prompt, NEW_TOKENS)
    assert got.new_tokens == NEW_TOKENS
    assert engine.info().details["context_resizes_after_prepare"] == 1
    with pytest.raises(Exception, match="exceed the model's context"):
        engine.generate_ids([1] * engine.context_limit, NEW_TOKENS)


def test_info_records_the_f32_kv_cache_and_no_gpu_layers(engines):
    info = engines("phi", "llama_cpp").info()
    assert info.compute_precision == "f32"
    assert info.precision_settings["kv_cache_type"] == "f32"
    assert info.precision_settings["flash_attention"] is False
    assert info.precision_settings["n_gpu_layers"] == 0
    assert info.library_versions["llama-cpp-python"]
    assert "F32" in info.details["model_description"]


def test_info_after_the_load_never_calls_llamas_unsafe_system_info(engines, monkeypatch):
    """llama_print_system_info() writes one static std::string: two threads calling it at once
    corrupt the heap (6 of 50 servers aborted on concurrent /health requests). It is read once
    during the load, so info() from any thread afterwards does not call it."""
    import concurrent.futures

    import llama_cpp

    engine = engines("gpt2", "llama_cpp")
    expected = engine.info().details

    def unsafe():
        raise AssertionError("llama_print_system_info called after the load")

    monkeypatch.setattr(llama_cpp, "llama_print_system_info", unsafe)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        details = list(pool.map(lambda _: engine.info().details, range(8)))
    assert details == [expected] * 8
    assert expected["system_info"]


def test_cuda_without_gpu_offload_is_refused_not_run_on_the_cpu(standin_dirs, artefact_dirs):
    from serving_energy.engines import load_engine
    from serving_energy.engines.base import EngineError
    from serving_energy.engines.llama_cpp_engine.engine import gpu_offload_supported

    if gpu_offload_supported():
        pytest.skip("this llama-cpp-python build has GPU offload (tests/engines/test_cuda.py)")
    with pytest.raises(EngineError, match="no GPU offload"):
        load_engine(
            "llama_cpp", "cuda", standin_dirs["gpt2"], artefact_dirs["gpt2", "llama_cpp"], 1
        )


def _sdist(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def test_only_the_converter_is_extracted_from_the_sdist(tmp_path):
    archive = tmp_path / "llama_cpp_python-9.9.9.tar.gz"
    root = "llama_cpp_python-9.9.9/vendor/llama.cpp/"
    _sdist(
        archive,
        {
            root + "convert_hf_to_gguf.py": "print('convert')",
            root + "conversion/__init__.py": "",
            root + "gguf-py/gguf/__init__.py": "",
            root + "ggml/src/huge.c": "int main;",
            "llama_cpp_python-9.9.9/llama_cpp/llama.py": "",
        },
    )
    out = tmp_path / "converter"
    converter.extract_converter(archive, out)
    assert converter.is_converter_dir(out)
    assert (out / "conversion" / "__init__.py").is_file()
    assert not (out / "ggml").exists()


def test_an_sdist_without_the_converter_is_named(tmp_path):
    archive = tmp_path / "llama_cpp_python-9.9.9.tar.gz"
    _sdist(archive, {"llama_cpp_python-9.9.9/README.md": "x"})
    with pytest.raises(converter.ConverterUnavailable, match="holds no vendor/llama.cpp"):
        converter.extract_converter(archive, tmp_path / "out")


def test_a_named_converter_folder_must_hold_the_converter(tmp_path, monkeypatch):
    monkeypatch.setenv(converter.CONVERTER_DIR_VARIABLE, str(tmp_path))
    with pytest.raises(converter.ConverterUnavailable, match="LLAMA_CPP_CONVERTER_DIR="):
        converter.converter_dir()
