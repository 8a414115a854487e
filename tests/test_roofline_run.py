"""A run's roofline from its model folder, its decode speed and the host's bandwidth."""

from __future__ import annotations

import json
import struct

import pytest

from serving_energy.meters.roofline import BandwidthMeasurement, HostBandwidth, run_roofline


def write_checkpoint(folder, tensors):
    header = {
        name: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}
        for name, shape in tensors.items()
    }
    raw = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)


def host(cpu_gb_s=20.0, cuda_gb_s=None, cpu_llc=None, cuda_llc=None):
    measurements = [
        BandwidthMeasurement("cpu", "sum", 2, 1, cpu_llc, 1, 1.0, cpu_gb_s, cpu_gb_s, cpu_gb_s)
    ]
    if cuda_gb_s is not None:
        measurements.append(
            BandwidthMeasurement(
                "cuda:0", "sum", None, 1, cuda_llc, 1, 1.0, cuda_gb_s, cuda_gb_s, cuda_gb_s
            )
        )
    return HostBandwidth(
        "h", "t", 2, cpu_gb_s, 10.0, cuda_gb_s, cuda_gb_s, tuple(measurements), "sum@2"
    )


def test_a_runs_point_against_the_cpu_bound(tmp_path):
    # 1 M read parameters x 4 bytes: 4 MB a token, so 20 GB/s bounds decoding at 5,000 tokens/s.
    write_checkpoint(tmp_path, {"h.0.w": [1000, 1000], "lm_head.weight": [0, 0]})
    point = run_roofline(tmp_path, "f32", "cpu", new_tokens=1000, duration_s=2.0, bandwidth=host())
    assert point["tokens_per_s"] == 500
    assert point["roofline_weight_bytes_per_token"] == 4_000_000
    assert point["roofline_bound_tokens_per_s"] == pytest.approx(5000)
    assert point["roofline_fraction"] == pytest.approx(0.1)
    assert point["roofline_gemv_bandwidth_gb_s"] == 10.0
    assert point["roofline_cache_resident"] is False
    assert point["roofline_above_bound"] is False


def test_weights_that_fit_four_times_the_cache_get_no_bound(tmp_path):
    # 4 MB a token against a 2 MiB cache: over 4x (8.4 MB) is needed for a memory bound, so the
    # weights are partly cache hits and no fraction is reported; speed and bytes are kept.
    write_checkpoint(tmp_path, {"h.0.w": [1000, 1000], "lm_head.weight": [0, 0]})
    point = run_roofline(tmp_path, "f32", "cpu", 1000, 2.0, host(cpu_llc=2 * 2**20))
    assert point["roofline_cache_resident"] is True
    assert point["roofline_fraction"] is None
    assert point["roofline_bound_tokens_per_s"] is None
    assert point["tokens_per_s"] == 500
    assert point["roofline_weight_bytes_per_token"] == 4_000_000
    assert point["roofline_last_level_cache_bytes"] == 2 * 2**20
    assert "4.0 MB" in point["reason"] and "2 MiB last-level cache" in point["reason"]


def test_weights_over_four_times_the_cache_are_bounded(tmp_path):
    write_checkpoint(tmp_path, {"h.0.w": [1000, 1000], "lm_head.weight": [0, 0]})
    point = run_roofline(tmp_path, "f32", "cpu", 1000, 2.0, host(cpu_llc=2**19))
    assert point["roofline_cache_resident"] is False
    assert point["roofline_fraction"] == pytest.approx(0.1)


def test_each_device_is_judged_against_its_own_cache(tmp_path):
    # A 32 MiB L3 holds these weights, a 512 KiB GPU L2 does not.
    write_checkpoint(tmp_path, {"h.0.w": [1000, 1000], "lm_head.weight": [0, 0]})
    bandwidth = host(cuda_gb_s=2000.0, cpu_llc=32 * 2**20, cuda_llc=2**19)
    assert run_roofline(tmp_path, "f32", "cpu", 10, 1.0, bandwidth)["roofline_fraction"] is None
    cuda = run_roofline(tmp_path, "f32", "cuda", 10, 1.0, bandwidth)
    assert cuda["roofline_bound_tokens_per_s"] == pytest.approx(500_000)


def test_a_cuda_run_needs_a_cuda_calibration_and_a_run_needs_tokens(tmp_path):
    write_checkpoint(tmp_path, {"w": [10, 10]})
    with pytest.raises(ValueError, match="without a CUDA device"):
        run_roofline(tmp_path, "f32", "cuda", 10, 1.0, host())
    with pytest.raises(ValueError, match="no decode speed"):
        run_roofline(tmp_path, "f32", "cpu", 0, 1.0, host())
