"""The roofline library on fakes: timing arithmetic with a fake clock, weight bytes from
hand-written safetensors checkpoints. No assertion depends on how fast this machine is."""

import dataclasses
import json

import pytest

from serving_energy.meters import roofline
from serving_energy.meters.roofline import (
    BandwidthMeasurement,
    HostBandwidth,
    decode_tokens_per_s_bound,
    kv_cache_bytes_per_token,
    roofline_point,
    summarise,
    time_repeats,
    weight_bytes_per_token,
)


class FakeClock:
    """Each read_once advances time by the next scripted duration."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def __call__(self):
        return self.now

    def read_once(self):
        self.calls += 1
        self.now += self.durations.pop(0)


def test_time_repeats_times_each_call_after_untimed_warmups():
    clock = FakeClock([9.0, 9.0, 0.5, 0.25, 1.0])
    synced = []
    durations = time_repeats(
        clock.read_once, 3, warmup=2, clock=clock, synchronize=lambda: synced.append(clock.now)
    )
    assert durations == [0.5, 0.25, 1.0]
    assert clock.calls == 5
    assert len(synced) == 4  # after the warm-ups, then after each timed call


@pytest.mark.parametrize(("repeats", "warmup"), [(0, 1), (3, -1)])
def test_time_repeats_rejects_bad_counts(repeats, warmup):
    with pytest.raises(ValueError, match="must be >="):
        time_repeats(lambda: None, repeats, warmup=warmup)


def test_a_clock_too_coarse_for_the_buffer_is_an_error():
    clock = FakeClock([0.0, 0.0])
    with pytest.raises(ValueError, match="too coarse"):
        time_repeats(clock.read_once, 1, clock=clock)


def test_summary_is_the_median_and_its_spread():
    measurement = summarise(
        [0.4, 0.1, 0.2, 0.2, 0.3],
        device="cpu",
        kernel="sum",
        threads=2,
        buffer_bytes=2 * 10**9,
        last_level_cache_bytes=None,
    )
    assert measurement.median_s == 0.2
    assert measurement.read_bandwidth_gb_s == pytest.approx(10.0)
    assert measurement.min_read_bandwidth_gb_s == pytest.approx(5.0)
    assert measurement.max_read_bandwidth_gb_s == pytest.approx(20.0)
    assert measurement.repeats == 5


def test_last_level_cache_size_is_read_from_sysfs(tmp_path):
    for index, size in enumerate(("48K", "2048K", "32768K")):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size + "\n")
    assert roofline.cpu_last_level_cache_bytes(tmp_path) == 32 * 2**20
    assert roofline.cpu_last_level_cache_bytes(tmp_path / "missing") is None


def test_a_buffer_that_would_fit_the_cache_is_refused(monkeypatch):
    monkeypatch.setattr(roofline, "cpu_last_level_cache_bytes", lambda: 256 * 2**20)
    with pytest.raises(ValueError, match="last-level cache"):
        roofline.measure_cpu_read_bandwidth(1, buffer_bytes=512 * 2**20)
    with pytest.raises(ValueError, match="unknown kernel 'copy'"):
        roofline.measure_cpu_read_bandwidth(1, kernel="copy")


def test_the_default_cpu_buffer_scales_with_the_cache(monkeypatch):
    assert roofline.cpu_buffer_bytes(None) == 2**30
    assert roofline.cpu_buffer_bytes(32 * 2**20) == 256 * 2**20  # this VM's L3: the floor
    assert roofline.cpu_buffer_bytes(384 * 2**20) == 3 * 2**30  # an EPYC Genoa's L3: 8x
    for llc in (None, 2**20, 32 * 2**20, 384 * 2**20):  # every default passes the buffer's rule
        roofline._check_buffer(roofline.cpu_buffer_bytes(llc), llc, "sum")
    asked = []

    def fake_kernel(kernel, buffer_bytes, device, threads):
        asked.append(buffer_bytes)
        return (lambda: None), buffer_bytes

    monkeypatch.setattr(roofline, "cpu_last_level_cache_bytes", lambda: 64 * 2**20)
    monkeypatch.setattr(roofline, "_read_kernel", fake_kernel)
    roofline.measure_cpu_read_bandwidth(1, repeats=1)
    assert asked == [512 * 2**20]


@pytest.mark.parametrize("kernel", roofline.KERNELS)
def test_cpu_measurement_reads_the_buffer_with_the_given_threads(kernel, monkeypatch):
    """The real kernels on a small buffer (the cache-size guard is faked away): the record is
    consistent and torch's thread count is restored. Speeds are not asserted."""
    import torch

    monkeypatch.setattr(roofline, "cpu_last_level_cache_bytes", lambda: None)
    before = torch.get_num_threads()
    measurement = roofline.measure_cpu_read_bandwidth(1, kernel=kernel, buffer_bytes=8 * 2**20)
    assert torch.get_num_threads() == before
    assert (measurement.device, measurement.kernel, measurement.threads) == ("cpu", kernel, 1)
    assert 0 < measurement.buffer_bytes <= 8 * 2**20
    assert measurement.read_bandwidth_gb_s == pytest.approx(
        measurement.buffer_bytes / measurement.median_s / 1e9
    )


def _measurement(device, kernel, gb_s):
    return BandwidthMeasurement(
        device=device,
        kernel=kernel,
        threads=2 if device == "cpu" else None,
        buffer_bytes=10**9,
        last_level_cache_bytes=None,
        repeats=3,
        median_s=1 / gb_s,
        read_bandwidth_gb_s=gb_s,
        min_read_bandwidth_gb_s=gb_s,
        max_read_bandwidth_gb_s=gb_s,
    )


def test_host_calibration_round_trips_through_json(tmp_path, monkeypatch):
    # ONNX Runtime's GEMV on one thread beats torch's sum: the bound is the best of all.
    fakes = {("sum", 2): 40.0, ("gemv", 2): 20.0, ("ort_gemv", 1): 43.0}
    monkeypatch.setattr(roofline, "available_cpu_kernels", lambda: roofline.KERNELS)
    monkeypatch.setattr(
        roofline,
        "measure_cpu_read_bandwidth",
        lambda threads, kernel: dataclasses.replace(
            _measurement("cpu", kernel, fakes.get((kernel, threads), 10.0)), threads=threads
        ),
    )
    calibration = roofline.calibrate_host(2, cuda=False)
    assert calibration.cpu_read_bandwidth_gb_s == 43.0
    assert calibration.cpu_bound_kernel == "ort_gemv@1"
    assert calibration.cpu_gemv_bandwidth_gb_s == 20.0
    assert len(calibration.measurements) == len(roofline.KERNELS) * 2  # threads 1 and 2
    assert calibration.cuda_read_bandwidth_gb_s is None and calibration.threads == 2
    roofline.write_host_bandwidth(calibration, tmp_path / "bandwidth.json")
    assert json.loads((tmp_path / "bandwidth.json").read_text())["cpu_read_bandwidth_gb_s"] == 43
    assert roofline.read_host_bandwidth(tmp_path / "bandwidth.json") == calibration
    assert calibration.read_bandwidth_gb_s("cpu") == 43.0
    with pytest.raises(ValueError, match="without a CUDA device"):
        calibration.read_bandwidth_gb_s("cuda")
    with pytest.raises(ValueError, match="'tpu'"):
        calibration.read_bandwidth_gb_s("tpu")


def test_thread_counts_reach_the_engines_own():
    assert roofline.thread_counts(1) == (1,)
    assert roofline.thread_counts(2) == (1, 2)
    assert roofline.thread_counts(6) == (1, 2, 4, 6)


def test_host_calibration_with_a_gpu_uses_its_own_bandwidth():
    calibration = HostBandwidth(
        host="h",
        measured_at="t",
        threads=2,
        cpu_read_bandwidth_gb_s=40.0,
        cpu_gemv_bandwidth_gb_s=20.0,
        cuda_read_bandwidth_gb_s=4000.0,
        cuda_gemv_bandwidth_gb_s=3500.0,
        measurements=(_measurement("cuda:0", "sum", 4000.0),),
    )
    assert calibration.read_bandwidth_gb_s("cuda") == 4000.0


# --- weight bytes -----------------------------------------------------------------------------


def write_checkpoint(path, tensors):
    """A real safetensors file of zero tensors: name -> (torch dtype, shape)."""
    import torch
    from safetensors.torch import save_file

    save_file(
        {name: torch.zeros(shape, dtype=dtype) for name, (dtype, shape) in tensors.items()}, path
    )


def test_tied_embedding_counts_once_and_positions_do_not(tmp_path):
    import torch

    write_checkpoint(
        tmp_path / "model.safetensors",
        {
            "transformer.wte.weight": (torch.float32, (100, 8)),  # tied to the head: read fully
            "transformer.wpe.weight": (torch.float32, (16, 8)),  # one row per token
            "transformer.h.0.mlp.c_fc.weight": (torch.float32, (8, 32)),
            "transformer.h.0.attn.bias": (torch.bool, (1, 1, 16, 16)),  # a causal-mask buffer
        },
    )
    counted = weight_bytes_per_token(tmp_path)
    assert counted.n_parameters == 800 + 128 + 256
    assert counted.gathered_parameters == 128
    assert counted.read_parameters == 800 + 256
    assert counted.bytes_per_token == 4 * (800 + 256)
    assert counted.stored_bytes == 4 * counted.n_parameters


def test_untied_input_embedding_is_gathered_and_precision_sets_the_bytes(tmp_path):
    import torch

    write_checkpoint(
        tmp_path / "model-00001-of-00002.safetensors",
        {"model.embed_tokens.weight": (torch.bfloat16, (100, 8))},
    )
    write_checkpoint(
        tmp_path / "model-00002-of-00002.safetensors",
        {
            "model.layers.0.mlp.up_proj.weight": (torch.bfloat16, (32, 8)),
            "lm_head.weight": (torch.bfloat16, (100, 8)),
        },
    )
    fp32 = weight_bytes_per_token(tmp_path)
    assert fp32.gathered_parameters == 800
    assert fp32.read_parameters == 256 + 800
    assert fp32.stored_bytes == 2 * (800 + 256 + 800)  # as stored: bf16
    assert fp32.bytes_per_token == 4 * (256 + 800)  # as computed: the engines load fp32
    assert weight_bytes_per_token(tmp_path, "bf16").bytes_per_token == 2 * (256 + 800)


def test_weight_bytes_of_a_real_standin_match_its_parameter_count(standin_dirs):
    standin = json.loads((standin_dirs["gpt2"] / "standin.json").read_text())
    counted = weight_bytes_per_token(standin_dirs["gpt2"])
    assert counted.n_parameters == standin["n_parameters"]
    assert counted.gathered_parameters > 0  # GPT-2's position table


def test_weight_bytes_need_a_safetensors_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .safetensors"):
        weight_bytes_per_token(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x01")
    with pytest.raises(ValueError, match="not a safetensors file"):
        weight_bytes_per_token(tmp_path)
    with pytest.raises(ValueError, match="unknown compute precision 'fp8'"):
        weight_bytes_per_token(tmp_path, "fp8")


def test_kv_cache_bytes_grow_with_the_context():
    one = kv_cache_bytes_per_token(
        n_layers=12, n_kv_heads=12, head_dim=64, context_tokens=1, bytes_per_element=4
    )
    assert one == 2 * 12 * 12 * 64 * 4
    assert (
        kv_cache_bytes_per_token(
            n_layers=12, n_kv_heads=12, head_dim=64, context_tokens=128, bytes_per_element=4
        )
        == 128 * one
    )
    with pytest.raises(ValueError, match="n_kv_heads"):
        kv_cache_bytes_per_token(
            n_layers=1, n_kv_heads=0, head_dim=1, context_tokens=1, bytes_per_element=4
        )


# --- the bound --------------------------------------------------------------------------------


def test_bound_and_fraction():
    assert decode_tokens_per_s_bound(44.0, 0.44e9) == pytest.approx(100.0)
    point = roofline_point(25.0, 44.0, 440_000_000)
    assert point.bound_tokens_per_s == pytest.approx(100.0)
    assert point.fraction_of_bound == pytest.approx(0.25)
    assert (point.tokens_per_s, point.read_bandwidth_gb_s) == (25.0, 44.0)


@pytest.mark.parametrize(
    ("tokens_per_s", "bandwidth", "bytes_per_token", "named"),
    [(-1.0, 1.0, 1, "tokens_per_s"), (1.0, 0.0, 1, "read_bandwidth_gb_s"), (1.0, 1.0, 0, "bytes")],
)
def test_bound_rejects_impossible_inputs(tokens_per_s, bandwidth, bytes_per_token, named):
    with pytest.raises(ValueError, match=named):
        roofline_point(tokens_per_s, bandwidth, bytes_per_token)
