"""llama.cpp through llama-cpp-python's ctypes bindings of its C API (``llama_decode``).

The high-level ``Llama`` class is not used: it samples inside llama.cpp and keeps an
``n_ctx x vocabulary`` score matrix in Python (2 GB at a 256 k vocabulary). This engine drives the
C API the way the other engines drive theirs: the transformers tokenizer's ids go in (the same ids
as every engine, so the GGUF's own tokenizer decides nothing), one ``llama_decode`` per prompt
chunk and per new token over llama.cpp's KV cache, and a greedy argmax with every EOS id barred
until the fixed number of new tokens is reached. The KV cache is kept in f32 (llama.cpp's default
is f16) and flash attention is off, so f32 weights compare with the fp32 engines.
"""

from __future__ import annotations

import ctypes
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from serving_energy.data.tokenizer import load_tokenizer
from serving_energy.engines.base import Engine, EngineError, EngineInfo, eos_ids_of
from serving_energy.engines.llama_cpp_engine.spec import GGUF_FILE, LlamaCppOptions

log = logging.getLogger(__name__)

# The context starts at this many tokens (or the model's own, if smaller) and grows in such
# blocks when the server prepares it for longer requests (``prepare_for``).
CONTEXT_BLOCK_TOKENS = 512
BATCH_TOKENS = 512  # tokens per llama_decode call of a prompt (llama.cpp's n_batch)
_CUDA_LAYERS = 1_000_000  # "all layers" for n_gpu_layers


def _llama():
    import llama_cpp

    return llama_cpp


def gpu_offload_supported() -> bool:
    return bool(_llama().llama_supports_gpu_offload())


class LlamaCppEngine(Engine):
    name = "llama_cpp"
    logits_unavailable_reason = None

    def __init__(
        self,
        provider: str,
        model_dir: Path,
        artefact_dir: Path,
        threads: int,
        options: LlamaCppOptions | None = None,
    ):
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if provider not in ("cpu", "cuda"):
            raise ValueError(f"llama_cpp runs on 'cpu' or 'cuda', not {provider!r}")
        super().__init__(provider, load_tokenizer(artefact_dir), threads, model_dir, artefact_dir)
        options = options if options is not None else LlamaCppOptions()
        self.export = _read_export(Path(artefact_dir))
        exported_type = self.export.get("details", {}).get("weight_type")
        if exported_type != options.weight_type:
            raise EngineError(
                f"{artefact_dir} is a {exported_type} GGUF, but engines.llama_cpp.weight_type is "
                f"{options.weight_type!r}: re-export it (the export rule does when the setting "
                "changes)"
            )
        # The GGUF's weight type is the arithmetic: llama.cpp's CPU kernels convert activations
        # to it (q8_0 products run on int8, the activations quantised to q8_0).
        self.weight_type = options.weight_type
        lc = _llama()
        if provider == "cuda" and not gpu_offload_supported():
            raise EngineError(
                "provider 'cuda' asked for, but this llama-cpp-python build has no GPU offload "
                "(install it with CMAKE_ARGS=-DGGML_CUDA=on); no silent CPU fallback"
            )
        lc.llama_backend_init()
        _quiet_llama_log(lc)
        model_params = lc.llama_model_default_params()
        model_params.n_gpu_layers = _CUDA_LAYERS if provider == "cuda" else 0
        gguf = Path(artefact_dir) / GGUF_FILE
        self._model = lc.llama_model_load_from_file(str(gguf).encode(), model_params)
        if not self._model:
            raise EngineError(f"llama.cpp cannot load {gguf}")
        self._vocab = lc.llama_model_get_vocab(self._model)
        self.vocab_size = int(lc.llama_vocab_n_tokens(self._vocab))
        self.context_limit = int(lc.llama_model_n_ctx_train(self._model))
        self._ctx = None
        self._batch = None
        self.context_tokens = 0
        self.context_resizes_after_prepare = 0
        self._prepared = False
        # len() of a fast tokenizer costs milliseconds: taken once, not per token.
        self.tokenizer_size = len(self.tokenizer)
        if self.tokenizer_size > self.vocab_size:
            raise EngineError(
                f"the tokenizer has {self.tokenizer_size} tokens but {gguf} embeds "
                f"{self.vocab_size}: not this model's GGUF"
            )
        eos = np.array(eos_ids_of(self.tokenizer), dtype=np.int64)
        self._barred = eos[eos < self.vocab_size]
        self._new_context(min(CONTEXT_BLOCK_TOKENS, self.context_limit))
        self._details = self._constant_details()

    # -- llama.cpp's context ------------------------------------------------------------------
    def _new_context(self, tokens: int) -> None:
        lc = _llama()
        self._free_context()
        params = lc.llama_context_default_params()
        params.n_ctx = tokens
        params.n_batch = BATCH_TOKENS
        params.n_ubatch = BATCH_TOKENS
        params.n_seq_max = 1
        params.n_threads = self.threads
        params.n_threads_batch = self.threads
        params.type_k = lc.GGML_TYPE_F32
        params.type_v = lc.GGML_TYPE_F32
        params.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.offload_kqv = self.provider == "cuda"
        params.no_perf = True
        self._ctx = lc.llama_init_from_model(self._model, params)
        if not self._ctx:
            raise EngineError(f"llama.cpp cannot create a context of {tokens} tokens")
        self._batch = lc.llama_batch_init(BATCH_TOKENS, 0, 1)
        self.context_tokens = int(lc.llama_n_ctx(self._ctx))

    def _free_context(self) -> None:
        lc = _llama()
        if self._batch is not None:
            lc.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx:
            lc.llama_free(self._ctx)
            self._ctx = None

    def _ensure_context(self, total_tokens: int) -> None:
        if total_tokens <= self.context_tokens:
            return
        if total_tokens > self.context_limit:
            raise EngineError(
                f"{total_tokens} tokens exceed the model's context of {self.context_limit}"
            )
        blocks = -(-total_tokens // CONTEXT_BLOCK_TOKENS)
        self._new_context(min(blocks * CONTEXT_BLOCK_TOKENS, self.context_limit))
        if self._prepared:
            self.context_resizes_after_prepare += 1
            log.warning(
                "llama.cpp context grown to %d tokens after the server prepared it: a request "
                "was longer than the study's; this one paid for a new context",
                self.context_tokens,
            )

    def prepare_for(self, total_tokens: int) -> None:
        self._ensure_context(total_tokens)
        self._prepared = True

    def _decode(self, token_ids: Sequence[int], start: int, all_logits: bool) -> np.ndarray:
        """Feed ``token_ids`` at positions ``start...``; the logits of every position (or of the
        last), copied out of llama.cpp's buffer."""
        lc = _llama()
        rows = []
        for offset in range(0, len(token_ids), BATCH_TOKENS):
            chunk = token_ids[offset : offset + BATCH_TOKENS]
            batch = self._batch
            batch.n_tokens = len(chunk)
            last = offset + len(chunk) == len(token_ids)
            for i, token in enumerate(chunk):
                batch.token[i] = int(token)
                batch.pos[i] = start + offset + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = all_logits or (last and i == len(chunk) - 1)
            status = lc.llama_decode(self._ctx, batch)
            if status != 0:
                raise EngineError(f"llama_decode failed with status {status}")
            wanted = range(len(chunk)) if all_logits else ([len(chunk) - 1] if last else [])
            for i in wanted:
                pointer = lc.llama_get_logits_ith(self._ctx, i)
                row = np.ctypeslib.as_array(
                    ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self.vocab_size,)
                )
                rows.append(row.copy())
        return np.stack(rows)

    def _clear(self) -> None:
        lc = _llama()
        lc.llama_memory_clear(lc.llama_get_memory(self._ctx), True)

    # -- the engine interface -----------------------------------------------------------------
    def generate_ids(self, input_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self._ensure_context(len(input_ids) + max_new_tokens)
        self._clear()
        logits = self._decode(list(input_ids), 0, all_logits=False)[-1]
        new_ids: list[int] = []
        position = len(input_ids)
        while True:
            # Greedy with every EOS barred (exactly max_new_tokens), over the whole embedding as
            # torch's argmax is: a padded id can win in neither.
            logits[self._barred] = -np.inf
            token = int(np.argmax(logits))
            new_ids.append(token)
            if len(new_ids) == max_new_tokens:
                return new_ids
            logits = self._decode([token], position, all_logits=False)[-1]
            position += 1

    def sequence_logits(self, token_ids: Sequence[int]):
        self._ensure_context(len(token_ids))
        self._clear()
        return self._decode(list(token_ids), 0, all_logits=True).astype(np.float32)

    def _constant_details(self) -> dict:
        """What info() reports that cannot change after the load, read once during it.

        llama_print_system_info() builds its text in one function-static std::string, so two
        threads calling it at once corrupt the heap: concurrent /health requests right after the
        load aborted 6 of 50 servers ("free(): invalid pointer", "The futex facility returned an
        unexpected error code."). Read here, during the load, it is called on one thread only.
        """
        lc = _llama()
        description = ctypes.create_string_buffer(256)
        lc.llama_model_desc(self._model, description, len(description))
        return {
            "gguf_file": GGUF_FILE,
            "model_description": description.value.decode(errors="replace"),
            "model_size_bytes": int(lc.llama_model_size(self._model)),
            "model_parameters": int(lc.llama_model_n_params(self._model)),
            "gpu_offload_supported": gpu_offload_supported(),
            "system_info": lc.llama_print_system_info().decode(errors="replace").strip(),
        }

    def info(self) -> EngineInfo:
        return self._info(
            "cuda:0" if self.provider == "cuda" else "cpu",
            details={
                **self._details,
                "context_tokens": self.context_tokens,
                "context_limit_tokens": self.context_limit,
                "context_resizes_after_prepare": self.context_resizes_after_prepare,
            },
            compute_precision=self.weight_type,
            precision_settings={
                "weight_type": self.weight_type,
                "kv_cache_type": "f32",
                "flash_attention": False,
                "n_gpu_layers": _CUDA_LAYERS if self.provider == "cuda" else 0,
            },
        )

    def __del__(self) -> None:  # llama.cpp's memory is not Python's: give it back
        try:
            self._free_context()
            if getattr(self, "_model", None):
                _llama().llama_model_free(self._model)
                self._model = None
        except Exception:  # noqa: BLE001, S110 - at interpreter shutdown the bindings may be gone
            pass


def _read_export(artefact_dir: Path) -> dict:
    """export.json of a complete GGUF export (read here: engines.export would bring the export
    env's imports into the serving env)."""
    path = artefact_dir / "export.json"
    if not path.is_file() or not (artefact_dir / GGUF_FILE).is_file():
        raise EngineError(
            f"{artefact_dir} holds no complete GGUF export ({GGUF_FILE}, export.json)"
        )
    return json.loads(path.read_text())


def _quiet_llama_log(lc) -> None:
    """llama.cpp logs every tensor at load to stderr; keep its warnings and errors only."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return

    @lc.llama_log_callback
    def callback(level, text, user_data):
        if level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
            sys.stderr.write(text.decode(errors="replace"))

    _LOG_CALLBACK = callback
    lc.llama_log_set(callback, ctypes.c_void_p(0))


_LOG_CALLBACK = None
