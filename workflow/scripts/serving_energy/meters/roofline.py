"""How close a run's decoding came to the machine's memory-bandwidth bound.

Batch-1 greedy decoding reads every weight matrix once per new token and does about two
floating-point operations per weight read, far less than the cores could do at that bandwidth: it
is memory-bound. So no engine can decode faster than

    bound tokens/s = read bandwidth / bytes read per token

and ``tokens/s ÷ bound`` says how much of the machine an engine used, independently of the engine.

Three parts, each usable alone:

- ``measure_cpu_read_bandwidth`` / ``measure_cuda_read_bandwidth`` time a read-dominated kernel
  (a plain sum, or a GEMV, decoding's access pattern) over a buffer much larger than the
  last-level cache and report the median of repeats; ``calibrate_host`` measures both kernels on
  both devices and is the record to cache per host.
- ``weight_bytes_per_token`` counts the weight bytes a model reads per decoded token from its
  safetensors headers (no weights are loaded).
- ``roofline_point`` turns a measured tokens/s into the bound and the fraction achieved.

The bound is a DRAM bound: it holds only for weights that do not stay in the last-level cache
between tokens. A model whose weights per token are under ``MIN_BUFFER_TO_LLC`` x that cache (the
calibration's own rule for its buffer) gets no fraction: the smoke study's 13 MB stand-ins, on a
CPU with 32 MiB of L3, decoded at 1.02 of a 32.5 GB/s "bound".

GB here is 10^9 bytes, as in bandwidth specifications.
"""

from __future__ import annotations

import json
import platform
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GB = 1e9
KERNELS = ("gemv", "sum", "ort_gemv")
# Kernels a GPU calibration runs (ONNX Runtime's is a CPU session here).
CUDA_KERNELS = ("gemv", "sum")
DEFAULT_CUDA_BUFFER_BYTES = 2 * 2**30
# A buffer below this multiple of the last-level cache would partly be read from the cache.
MIN_BUFFER_TO_LLC = 4
# The CPU calibration's buffer: CPU_BUFFER_TO_LLC x the last-level cache, at least
# MIN_CPU_BUFFER_BYTES (1 GiB where the cache size is unknown). A streaming read of twice the
# refused size leaves nothing in an LRU cache. At 32 MiB of L3 (benchmarks/bench_calibration.py),
# 256 MiB read at 0.86-1.11x the bandwidth of 1 GiB per kernel, either way (this VM's noise), and
# the calibration took 6.1 s instead of 29.2 s.
CPU_BUFFER_TO_LLC = 2 * MIN_BUFFER_TO_LLC
MIN_CPU_BUFFER_BYTES = 256 * 2**20
UNKNOWN_CACHE_CPU_BUFFER_BYTES = 2**30
# Bytes per parameter at each compute precision an engine reports (EngineInfo.compute_precision).
# TF32 reads fp32 weights; OpenVINO's CPU plugin repacks fp32 weights into bf16 for bf16 inference.
BYTES_PER_PARAMETER = {"f32": 4, "tf32": 4, "bf16": 2, "f16": 2, "int8": 1, "u8": 1, "int4": 0.5}
_SAFETENSORS_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}
# Tables a token reads one row of (input and position embeddings); an input embedding tied to the
# output head is read in full by the head, so it counts when the checkpoint has no separate head.
_INPUT_EMBEDDINGS = (
    "wte.weight",
    "embed_tokens.weight",
    "embed_in.weight",
    "word_embeddings.weight",
)
_POSITION_EMBEDDINGS = ("wpe.weight", "embed_positions.weight", "position_embeddings.weight")
_OUTPUT_HEADS = ("lm_head.weight", "embed_out.weight")


@dataclass(frozen=True)
class BandwidthMeasurement:
    """One timed read kernel: ``read_bandwidth_gb_s`` = bytes read per repeat / median time."""

    device: str  # "cpu", "cuda:0"
    kernel: str  # "gemv": y = A x over an fp32 matrix A; "sum": sum of an fp32 buffer
    threads: int | None  # CPU threads the kernel ran on (None on a GPU)
    buffer_bytes: int  # bytes read per repeat
    last_level_cache_bytes: int | None  # None where the size is unknown
    repeats: int
    median_s: float
    read_bandwidth_gb_s: float
    min_read_bandwidth_gb_s: float
    max_read_bandwidth_gb_s: float


@dataclass(frozen=True)
class HostBandwidth:
    """A host's calibration: what the measure job caches per host and every run refers to.

    ``*_read_bandwidth_gb_s`` is the bound: the best read rate any calibration kernel reached
    (torch's sum and GEMV, ONNX Runtime's MatMul GEMV where installed) at any thread count up to
    the engines' (``bound_kernel`` says which), from its fastest repeat. A single kernel is not a
    bound: torch's sum (32 GB/s here) was beaten by ONNX Runtime's decoding (about 34 GB/s) at
    the paper's scale. ``*_gemv_bandwidth_gb_s`` is what torch's fp32 GEMV, decoding's kernel,
    reaches (median). A run above the bound is flagged (``roofline_above_bound``).
    """

    host: str
    measured_at: str
    threads: int
    cpu_read_bandwidth_gb_s: float
    cpu_gemv_bandwidth_gb_s: float
    cuda_read_bandwidth_gb_s: float | None  # None without a CUDA device
    cuda_gemv_bandwidth_gb_s: float | None
    measurements: tuple[BandwidthMeasurement, ...]
    cpu_bound_kernel: str | None = None  # "kernel@threads" of the CPU bound (None: older record)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostBandwidth:
        return cls(
            **{
                **data,
                "measurements": tuple(BandwidthMeasurement(**m) for m in data["measurements"]),
            }
        )

    def last_level_cache_bytes(self, provider: str) -> int | None:
        """The last-level cache the calibration found on ``provider``'s device (None: unknown)."""
        cuda = provider == "cuda"
        sizes = [
            m.last_level_cache_bytes
            for m in self.measurements
            if m.device.startswith("cuda") == cuda and m.last_level_cache_bytes
        ]
        return max(sizes) if sizes else None

    def read_bandwidth_gb_s(self, provider: str) -> float:
        """The bandwidth that bounds a configuration on ``provider`` ("cpu" or "cuda")."""
        if provider == "cpu":
            return self.cpu_read_bandwidth_gb_s
        if provider == "cuda":
            if self.cuda_read_bandwidth_gb_s is None:
                raise ValueError(f"host {self.host!r} was calibrated without a CUDA device")
            return self.cuda_read_bandwidth_gb_s
        raise ValueError(f"unknown provider {provider!r}; expected 'cpu' or 'cuda'")


def time_repeats(
    read_once: Callable[[], object],
    repeats: int,
    *,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
    synchronize: Callable[[], None] = lambda: None,
) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``read_once`` after ``warmup`` untimed ones.

    ``synchronize`` waits for asynchronous work (a GPU) before each clock reading.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    for _ in range(warmup):
        read_once()
    synchronize()
    durations = []
    for _ in range(repeats):
        started = clock()
        read_once()
        synchronize()
        durations.append(clock() - started)
    if min(durations) <= 0:
        raise ValueError("a timed repeat took no time: the clock is too coarse for this buffer")
    return durations


def summarise(
    durations: list[float],
    *,
    device: str,
    kernel: str,
    threads: int | None,
    buffer_bytes: int,
    last_level_cache_bytes: int | None,
) -> BandwidthMeasurement:
    """The median-based measurement of ``durations`` (the median resists a noisy neighbour)."""
    median_s = statistics.median(durations)
    return BandwidthMeasurement(
        device=device,
        kernel=kernel,
        threads=threads,
        buffer_bytes=buffer_bytes,
        last_level_cache_bytes=last_level_cache_bytes,
        repeats=len(durations),
        median_s=median_s,
        read_bandwidth_gb_s=buffer_bytes / median_s / GB,
        min_read_bandwidth_gb_s=buffer_bytes / max(durations) / GB,
        max_read_bandwidth_gb_s=buffer_bytes / min(durations) / GB,
    )


def cpu_last_level_cache_bytes(
    sysfs: Path = Path("/sys/devices/system/cpu/cpu0/cache"),
) -> int | None:
    """The largest cache of CPU 0 as sysfs reports it (e.g. "32768K"), or None."""
    sizes = []
    for index in sysfs.glob("index*"):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        sizes.append(int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text))
    return max(sizes) if sizes else None


def cpu_buffer_bytes(llc_bytes: int | None) -> int:
    """The CPU calibration's default buffer for a last-level cache of ``llc_bytes``."""
    if llc_bytes is None:
        return UNKNOWN_CACHE_CPU_BUFFER_BYTES
    return max(MIN_CPU_BUFFER_BYTES, CPU_BUFFER_TO_LLC * llc_bytes)


def _check_buffer(buffer_bytes: int, llc_bytes: int | None, kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")
    if buffer_bytes < 2**20:
        raise ValueError(f"buffer_bytes {buffer_bytes} is too small to time a memory read")
    if llc_bytes is not None and buffer_bytes < MIN_BUFFER_TO_LLC * llc_bytes:
        raise ValueError(
            f"buffer_bytes {buffer_bytes} is less than {MIN_BUFFER_TO_LLC}x the last-level cache "
            f"({llc_bytes} bytes): the kernel would partly read from the cache"
        )


def _ort_gemv_kernel(buffer_bytes: int, threads: int):
    """ONNX Runtime's MatMul of a [1, K] vector by a [K, N] fp32 matrix: an engine's own GEMV."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rows = 4096
    cols = buffer_bytes // 4 // rows
    weights = np.ones((rows, cols), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "gemv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cols])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    vector = np.ones((1, rows), dtype=np.float32)
    return (lambda: session.run(None, {"x": vector})), weights.nbytes


def available_cpu_kernels() -> tuple[str, ...]:
    """The calibration kernels this environment can run (ONNX Runtime's needs onnxruntime)."""
    import importlib.util

    has_ort = all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx"))
    return tuple(k for k in KERNELS if k != "ort_gemv" or has_ort)


def _read_kernel(kernel: str, buffer_bytes: int, device: str, threads: int = 1):
    """A callable that reads ``buffer_bytes`` of fp32 once (and the bytes it really reads)."""
    import torch

    if kernel == "ort_gemv":
        if device != "cpu":
            raise ValueError("the ort_gemv calibration kernel runs on the CPU only")
        return _ort_gemv_kernel(buffer_bytes, threads)
    n_floats = buffer_bytes // 4
    if kernel == "sum":
        buffer = torch.ones(n_floats, dtype=torch.float32, device=device)
        return (lambda: buffer.sum()), buffer.numel() * 4
    cols = 4096
    matrix = torch.ones(n_floats // cols, cols, dtype=torch.float32, device=device)
    vector = torch.ones(cols, dtype=torch.float32, device=device)
    return (lambda: torch.mv(matrix, vector)), matrix.numel() * 4


def measure_cpu_read_bandwidth(
    threads: int,
    *,
    kernel: str = "sum",
    buffer_bytes: int | None = None,
    repeats: int = 11,
) -> BandwidthMeasurement:
    """Read bandwidth of the CPU's memory with ``threads`` torch threads (restored afterwards).

    What it measures: how fast ``threads`` cores stream an fp32 buffer from memory, through a plain
    sum (the read bound) or the kernel decoding uses (GEMV); not the memory's peak, which may
    need more cores than the engine is given. ``buffer_bytes`` defaults to
    ``cpu_buffer_bytes(last-level cache)``.
    """
    import torch

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    llc = cpu_last_level_cache_bytes()
    if buffer_bytes is None:
        buffer_bytes = cpu_buffer_bytes(llc)
    _check_buffer(buffer_bytes, llc, kernel)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        read_once, bytes_read = _read_kernel(kernel, buffer_bytes, "cpu", threads)
        with torch.inference_mode():
            durations = time_repeats(read_once, repeats)
    finally:
        torch.set_num_threads(previous)
    return summarise(
        durations,
        device="cpu",
        kernel=kernel,
        threads=threads,
        buffer_bytes=bytes_read,
        last_level_cache_bytes=llc,
    )


def measure_cuda_read_bandwidth(
    *,
    device: str = "cuda:0",
    kernel: str = "sum",
    buffer_bytes: int = DEFAULT_CUDA_BUFFER_BYTES,
    repeats: int = 21,
) -> BandwidthMeasurement:
    """Read bandwidth of a CUDA device's memory through the same fp32 kernel (GPU L2 excluded)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device: torch.cuda.is_available() is False")
    index = torch.device(device).index or 0
    llc = torch.cuda.get_device_properties(index).L2_cache_size or None
    _check_buffer(buffer_bytes, llc, kernel)
    read_once, bytes_read = _read_kernel(kernel, buffer_bytes, device)
    with torch.inference_mode():
        durations = time_repeats(
            read_once, repeats, warmup=3, synchronize=lambda: torch.cuda.synchronize(index)
        )
    return summarise(
        durations,
        device=device,
        kernel=kernel,
        threads=None,
        buffer_bytes=bytes_read,
        last_level_cache_bytes=llc,
    )


def thread_counts(threads: int) -> tuple[int, ...]:
    """The thread counts a calibration tries: 1, powers of two, and the engines' own count."""
    counts = {threads}
    count = 1
    while count < threads:
        counts.add(count)
        count *= 2
    return tuple(sorted(counts))


def calibrate_host(threads: int, *, cuda: bool | None = None) -> HostBandwidth:
    """Measure the CPU with every available kernel at every ``thread_counts(threads)`` (and the
    first CUDA device; ``cuda=None`` means "if there is one"); the bound is the best of them."""
    import torch

    cpu = [
        measure_cpu_read_bandwidth(count, kernel=kernel)
        for kernel in available_cpu_kernels()
        for count in thread_counts(threads)
    ]
    best = max(cpu, key=lambda m: m.max_read_bandwidth_gb_s)
    torch_gemv = next(m for m in cpu if m.kernel == "gemv" and m.threads == threads)
    use_cuda = torch.cuda.is_available() if cuda is None else cuda
    gpu = (
        {kernel: measure_cuda_read_bandwidth(kernel=kernel) for kernel in CUDA_KERNELS}
        if use_cuda
        else {}
    )
    return HostBandwidth(
        host=platform.node(),
        measured_at=datetime.now(UTC).isoformat(),
        threads=threads,
        cpu_read_bandwidth_gb_s=best.max_read_bandwidth_gb_s,
        cpu_gemv_bandwidth_gb_s=torch_gemv.read_bandwidth_gb_s,
        cuda_read_bandwidth_gb_s=(
            max(m.max_read_bandwidth_gb_s for m in gpu.values()) if gpu else None
        ),
        cuda_gemv_bandwidth_gb_s=gpu["gemv"].read_bandwidth_gb_s if gpu else None,
        measurements=(*cpu, *gpu.values()),
        cpu_bound_kernel=f"{best.kernel}@{best.threads}",
    )


def write_host_bandwidth(calibration: HostBandwidth, path: Path) -> None:
    from serving_energy.core.io import write_atomic_json

    write_atomic_json(Path(path), calibration.to_dict())


def read_host_bandwidth(path: Path) -> HostBandwidth:
    return HostBandwidth.from_dict(json.loads(Path(path).read_text()))


# --- weight bytes per token -------------------------------------------------------------------


@dataclass(frozen=True)
class WeightBytes:
    """Weight bytes a model reads per decoded token at one compute precision."""

    n_parameters: int  # every floating-point tensor element in the checkpoint
    stored_bytes: int  # those tensors' bytes as stored
    gathered_parameters: int  # elements of tables a token reads one row of (not counted)
    read_parameters: int  # n_parameters - gathered_parameters
    bytes_per_parameter: float  # of the compute precision (4 for fp32)
    bytes_per_token: int  # read_parameters x bytes_per_parameter


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a .safetensors file: tensor name -> dtype, shape, data_offsets."""
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path} is not a safetensors file (shorter than its header length)")
        (length,) = struct.unpack("<Q", raw)
        if length > 100 * 2**20:
            raise ValueError(f"{path} declares a {length}-byte header: not a safetensors file")
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return header


def checkpoint_tensors(model_dir: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every tensor of a model folder's safetensors checkpoint (sharded or not): dtype, shape."""
    model_dir = Path(model_dir)
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"{model_dir} holds no .safetensors checkpoint: weight bytes are read from its headers"
        )
    tensors = {}
    for path in files:
        for name, entry in safetensors_header(path).items():
            tensors[name] = (entry["dtype"], tuple(entry["shape"]))
    return tensors


def _is_mask_buffer(name: str, shape: tuple[int, ...]) -> bool:
    # Old GPT-2 checkpoints store the causal mask as attn.bias [1, 1, n, n] and attn.masked_bias.
    return name.endswith("attn.masked_bias") or (name.endswith("attn.bias") and len(shape) == 4)


def weight_bytes_per_token(model_dir: Path, compute_precision: str = "f32") -> WeightBytes:
    """Weight bytes read per decoded token, from the checkpoint's safetensors headers.

    Counts every floating-point weight once, at ``compute_precision``'s bytes per parameter (the
    engine's arithmetic, not the stored dtype: the engines load fp32). Not counted: position
    embedding tables and an input embedding table that is not tied to the output head (a token
    reads one row of each), and causal-mask buffers. The KV cache read grows with the context and
    is given separately by ``kv_cache_bytes_per_token``.
    """
    if compute_precision not in BYTES_PER_PARAMETER:
        raise ValueError(
            f"unknown compute precision {compute_precision!r}; expected one of "
            f"{tuple(BYTES_PER_PARAMETER)}"
        )
    tensors = {
        name: (dtype, shape)
        for name, (dtype, shape) in checkpoint_tensors(model_dir).items()
        if dtype in _FLOAT_DTYPES and not _is_mask_buffer(name, shape)
    }

    def elements(shape: tuple[int, ...]) -> int:
        count = 1
        for size in shape:
            count *= size
        return count

    has_head = any(name.endswith(_OUTPUT_HEADS) for name in tensors)
    n_parameters = stored = gathered = 0
    for name, (dtype, shape) in tensors.items():
        count = elements(shape)
        n_parameters += count
        stored += count * _SAFETENSORS_DTYPE_BYTES[dtype]
        if name.endswith(_POSITION_EMBEDDINGS) or (name.endswith(_INPUT_EMBEDDINGS) and has_head):
            gathered += count
    bytes_per_parameter = BYTES_PER_PARAMETER[compute_precision]
    read = n_parameters - gathered
    return WeightBytes(
        n_parameters=n_parameters,
        stored_bytes=stored,
        gathered_parameters=gathered,
        read_parameters=read,
        bytes_per_parameter=bytes_per_parameter,
        bytes_per_token=int(read * bytes_per_parameter),
    )


def kv_cache_bytes_per_token(
    *, n_layers: int, n_kv_heads: int, head_dim: int, context_tokens: int, bytes_per_element: float
) -> int:
    """Bytes of keys and values a decoding step reads at ``context_tokens`` of context."""
    for name, value in (
        ("n_layers", n_layers),
        ("n_kv_heads", n_kv_heads),
        ("head_dim", head_dim),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if context_tokens < 0:
        raise ValueError(f"context_tokens must be >= 0, got {context_tokens}")
    return int(2 * n_layers * n_kv_heads * head_dim * context_tokens * bytes_per_element)


# --- the bound --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RooflinePoint:
    """A run's decode speed against the bandwidth bound of its model on its device."""

    tokens_per_s: float
    read_bandwidth_gb_s: float
    bytes_per_token: int
    bound_tokens_per_s: float
    fraction_of_bound: float


def decode_tokens_per_s_bound(read_bandwidth_gb_s: float, bytes_per_token: float) -> float:
    """The fastest batch-1 decode that reading ``bytes_per_token`` at this bandwidth allows."""
    if read_bandwidth_gb_s <= 0:
        raise ValueError(f"read_bandwidth_gb_s must be > 0, got {read_bandwidth_gb_s}")
    if bytes_per_token <= 0:
        raise ValueError(f"bytes_per_token must be > 0, got {bytes_per_token}")
    return read_bandwidth_gb_s * GB / bytes_per_token


def roofline_point(
    tokens_per_s: float, read_bandwidth_gb_s: float, bytes_per_token: int
) -> RooflinePoint:
    """``tokens_per_s`` as a fraction of ``decode_tokens_per_s_bound`` (1.0 = at the bound)."""
    if tokens_per_s < 0:
        raise ValueError(f"tokens_per_s must be >= 0, got {tokens_per_s}")
    bound = decode_tokens_per_s_bound(read_bandwidth_gb_s, bytes_per_token)
    return RooflinePoint(
        tokens_per_s=tokens_per_s,
        read_bandwidth_gb_s=read_bandwidth_gb_s,
        bytes_per_token=bytes_per_token,
        bound_tokens_per_s=bound,
        fraction_of_bound=tokens_per_s / bound,
    )


# --- a run's roofline -------------------------------------------------------------------------


def load_or_calibrate_host(path: Path, threads: int, cuda: bool) -> HostBandwidth:
    """This host's bandwidth at ``threads`` (measured now, and kept, if there is none yet)."""
    path = Path(path)
    if path.is_file():
        calibration = read_host_bandwidth(path)
        # A record without a bound kernel is from the single-kernel calibration, which an
        # engine could exceed: measured again.
        current = calibration.cpu_bound_kernel is not None
        if current and (not cuda or calibration.cuda_read_bandwidth_gb_s is not None):
            return calibration
    calibration = calibrate_host(threads, cuda=cuda or None)
    write_host_bandwidth(calibration, path)
    return calibration


def cache_resident(weight_bytes_per_token: int, last_level_cache_bytes: int | None) -> bool:
    """Whether a model's weights are small enough to be read from the cache rather than memory.

    The calibration's rule for its own buffer (``MIN_BUFFER_TO_LLC``): below that multiple of the
    last-level cache, part of every pass is a cache hit, so a memory-bandwidth bound does not
    bound it. An unknown cache size (None) is taken as not holding the weights.
    """
    if last_level_cache_bytes is None:
        return False
    return weight_bytes_per_token < MIN_BUFFER_TO_LLC * last_level_cache_bytes


def run_roofline(
    model_dir: Path,
    compute_precision: str | None,
    provider: str,
    new_tokens: int | None,
    duration_s: float | None,
    bandwidth: HostBandwidth,
) -> dict[str, Any]:
    """A run's decode speed against its device's bandwidth bound, as flat ``roofline_*`` values.

    ``tokens_per_s`` is new tokens over the inference window (prefill, HTTP and the server
    included), so the fraction is a lower bound of the decoding kernel's own. A model whose
    weights stay in the cache (``cache_resident``) has no bound and no fraction (both None,
    ``roofline_cache_resident`` true, ``reason`` says why); its speed and bytes are still kept.
    """
    weights = weight_bytes_per_token(model_dir, compute_precision or "f32")
    if not new_tokens or not duration_s:
        raise ValueError("a run without new tokens or duration has no decode speed")
    read_bandwidth = bandwidth.read_bandwidth_gb_s(provider)
    gemv = (
        bandwidth.cpu_gemv_bandwidth_gb_s
        if provider == "cpu"
        else bandwidth.cuda_gemv_bandwidth_gb_s
    )
    llc = bandwidth.last_level_cache_bytes(provider)
    common = {
        "roofline_read_bandwidth_gb_s": read_bandwidth,
        "roofline_gemv_bandwidth_gb_s": gemv,
        "roofline_weight_bytes_per_token": weights.bytes_per_token,
        "roofline_last_level_cache_bytes": llc,
        "roofline_compute_precision": compute_precision or "f32",
        "roofline_calibrated_at": bandwidth.measured_at,
    }
    tokens_per_s = new_tokens / duration_s
    if cache_resident(weights.bytes_per_token, llc):
        return {
            "tokens_per_s": tokens_per_s,
            **common,
            "roofline_bound_tokens_per_s": None,
            "roofline_fraction": None,
            "roofline_above_bound": None,
            "roofline_cache_resident": True,
            "reason": (
                f"the weights read per token ({weights.bytes_per_token / 1e6:.1f} MB) are under "
                f"{MIN_BUFFER_TO_LLC}x the {llc / 2**20:g} MiB last-level cache: they are read "
                "from the cache, so memory bandwidth does not bound this run"
            ),
        }
    point = roofline_point(tokens_per_s, read_bandwidth, weights.bytes_per_token)
    return {
        "tokens_per_s": point.tokens_per_s,
        **common,
        "roofline_bound_tokens_per_s": point.bound_tokens_per_s,
        "roofline_fraction": point.fraction_of_bound,
        # Above 1 the calibration did not bound this engine: the fraction means nothing there.
        "roofline_above_bound": point.fraction_of_bound > 1.0,
        "roofline_cache_resident": False,
    }
