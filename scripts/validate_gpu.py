"""Check the study's CUDA serving configurations on a GPU machine in one short run.

    python scripts/validate_gpu.py OUT_DIR [--architectures gpt2 llama] [--n-prompts 4]
    python scripts/validate_gpu.py OUT_DIR --engines torch torch_compile llama_cpp
    python scripts/validate_gpu.py OUT_DIR --geometry codeparrot-small --architectures gpt2 \
        --n-prompts 8 --max-new-tokens 116

The configurations are every engine plug-in with a CUDA provider (study/vocabulary.py: torch,
ONNX, TorchScript, torch.compile, llama.cpp), or those of --engines; torch on CUDA always runs, as
the others' reference. For each stand-in (built here, offline; tiny by default, or
codeparrot-small's geometry) it makes each engine's export (a CUDA one where the export is per
provider), then runs every configuration on a few prompts. For each it records the device really
used (torch tensors' device, ONNX Runtime's active providers, llama.cpp's GPU offload), the
precision really used (compute precision; torch's TF32 switches; ONNX Runtime's use_tf32), whether
the greedy ids equal torch on the CPU and the
equivalence check against torch on CUDA, NVML's energy counter and utilisation around the
generations, and tokens/s against the GPU's measured read-bandwidth bound (serving_energy.meters.roofline).
Failures (e.g. "onnxruntime has no CUDAExecutionProvider in this environment") are recorded, never
raised: the script always writes OUT_DIR/validate_gpu.json and OUT_DIR/validate_gpu.md, and exits 0
only if every configuration ran on the GPU in fp32 and agreed with torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from serving_energy.study.vocabulary import (  # noqa: E402 (after sys.path)
    ENGINE_SPECS,
    REFERENCE_ENGINE,
    Configuration,
)

# Every engine that runs on CUDA, in the study's order (the reference first).
CUDA_ENGINES: tuple[str, ...] = tuple(e for e, s in ENGINE_SPECS.items() if "cuda" in s.providers)
GEOMETRIES = {
    "tiny": {"n_layers": 2, "hidden_size": 64, "n_heads": 4, "extra": None},
    # codeparrot-small: 12 x 768, 12 heads, vocabulary 32 768 (~111 M parameters with GPT-2).
    "codeparrot-small": {
        "n_layers": 12,
        "hidden_size": 768,
        "n_heads": 12,
        "extra": {"vocab_size": 32768},
    },
}
PROMPTS = (
    "def has_close_elements(numbers, threshold):",
    "    return sorted(set(",
    "from typing import List\n\n\ndef separate_paren_groups(paren_string: str) -> List[str]:",
    "import math\n\n\ndef poly(xs: list, x: float):",
    "def fib(n: int):\n    if n < 2:",
    "class Stack:\n    def __init__(self):",
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--architectures", nargs="+", default=["gpt2", "llama"])
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=CUDA_ENGINES,
        help=f"the engines run on CUDA (default: all, each on the stand-ins it can take; "
        f"{REFERENCE_ENGINE} always runs)",
    )
    parser.add_argument("--geometry", choices=sorted(GEOMETRIES), default="tiny")
    parser.add_argument(
        "--no-roofline", action="store_true", help="skip the GPU read-bandwidth measurement"
    )
    parser.add_argument(
        "--tokenizer",
        choices=["bpe-humaneval", "gpt2"],
        help="the stand-ins' tokenizer (default: bpe-humaneval, or gpt2 where an engine such as "
        "llama_cpp converts no other)",
    )
    parser.add_argument("--n-prompts", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--work-dir", type=Path, help="default: a temporary directory")
    parser.add_argument(
        "--render", type=Path, help="only re-render this validate_gpu.json as markdown into OUT_DIR"
    )
    args = parser.parse_args(argv)
    named_engines = args.engines is not None
    args.engines = cuda_engines(args.engines if named_engines else CUDA_ENGINES)
    if args.tokenizer is None:
        takes_bpe = all(
            ENGINE_SPECS[e].standin_problem(a, "bpe-humaneval") is None
            for e in args.engines
            for a in args.architectures
        )
        args.tokenizer = "bpe-humaneval" if takes_bpe else "gpt2"
    # (engine, architecture) pairs an engine cannot take: an error where both were named, else
    # left out of the run and listed in the report with the reason.
    args.impossible = {
        (e, a): problem
        for e in args.engines
        for a in args.architectures
        if (problem := ENGINE_SPECS[e].standin_problem(a, args.tokenizer)) is not None
    }
    if named_engines and args.impossible:
        parser.error(
            "; ".join(
                f"{cuda_label(e)} cannot take a {a} stand-in with tokenizer "
                f"{args.tokenizer}: {problem}"
                for (e, a), problem in args.impossible.items()
            )
            + " (leave that engine or architecture out)"
        )
    return args


def cuda_engines(chosen) -> list[str]:
    """The chosen engines in the study's order, the reference first (the others' check)."""
    return [e for e in CUDA_ENGINES if e == REFERENCE_ENGINE or e in chosen]


def humaneval_first_lines() -> list[str]:
    """Each HumanEval problem's first line of code that is not an import (as the benchmark)."""
    from serving_energy.data.dataset import (
        first_code_line,
        packaged_humaneval_path,
        read_problems,
    )

    return [first_code_line(p.prompt) for p in read_problems(packaged_humaneval_path())]


def error_text(exc: BaseException) -> str:
    tail = traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]
    return f"{type(exc).__name__}: {exc}\n" + "".join(tail)


class Nvml:
    """NVML readings; every method returns None (and remembers why) where NVML is unusable."""

    def __init__(self):
        self.error = None
        self.handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception as exc:  # noqa: BLE001 - NVML missing is a finding, not a crash
            self.error = f"{type(exc).__name__}: {exc}"

    def _read(self, name, *args):
        if self.handle is None:
            return None
        try:
            return getattr(self.nvml, name)(self.handle, *args)
        except Exception:  # noqa: BLE001 - e.g. NVMLError_NotSupported on older GPUs
            return None

    def describe(self) -> dict:
        if self.handle is None:
            return {"nvml_error": self.error}
        memory = self._read("nvmlDeviceGetMemoryInfo")
        return {
            "name": self._read("nvmlDeviceGetName"),
            "driver_version": self.nvml.nvmlSystemGetDriverVersion(),
            "cuda_driver_version": self.nvml.nvmlSystemGetCudaDriverVersion(),
            "memory_total_bytes": getattr(memory, "total", None),
            "power_limit_w": (self._read("nvmlDeviceGetEnforcedPowerLimit") or 0) / 1000 or None,
        }

    def energy_mj(self):
        return self._read("nvmlDeviceGetTotalEnergyConsumption")

    def utilisation(self):
        rates = self._read("nvmlDeviceGetUtilizationRates")
        return None if rates is None else (rates.gpu, rates.memory)

    def power_w(self):
        milliwatts = self._read("nvmlDeviceGetPowerUsage")
        return None if milliwatts is None else milliwatts / 1000


class UtilisationSampler:
    """Samples GPU utilisation and power every 50 ms in a sleeping thread (no busy wait)."""

    def __init__(self, nvml: Nvml, period_s: float = 0.05):
        self.nvml, self.period_s = nvml, period_s
        self.samples: list[tuple[float, int | None, int | None, float | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.period_s):
            util = self.nvml.utilisation() or (None, None)
            self.samples.append((time.monotonic(), util[0], util[1], self.nvml.power_w()))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        def stats(index):
            values = [s[index] for s in self.samples if s[index] is not None]
            if not values:
                return None
            return {"mean": sum(values) / len(values), "max": max(values)}

        return {
            "n_samples": len(self.samples),
            "gpu_util_pct": stats(1),
            "mem_util_pct": stats(2),
            "power_w": stats(3),
        }


def environment(nvml: Nvml) -> dict:
    from serving_energy.core.versions import library_versions
    from serving_energy.study.vocabulary import ENGINE_PACKAGES

    record = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "library_versions": library_versions(ENGINE_PACKAGES),
        "gpu": nvml.describe(),
    }
    try:
        import torch

        record["torch_cuda_available"] = torch.cuda.is_available()
        record["torch_cuda_version"] = torch.version.cuda
        if torch.cuda.is_available():
            record["torch_device_name"] = torch.cuda.get_device_name(0)
    except Exception as exc:  # noqa: BLE001
        record["torch_error"] = error_text(exc)
    try:
        import onnxruntime

        record["onnxruntime_providers"] = onnxruntime.get_available_providers()
        record["onnxruntime_device"] = onnxruntime.get_device()
    except Exception as exc:  # noqa: BLE001
        record["onnxruntime_error"] = error_text(exc)
    return record


def precision_is_fp32(info: dict) -> bool:
    """fp32 arithmetic as the engine reports it: no TF32 in torch or ONNX Runtime's CUDA EP.

    An engine that computes with torch (its plug-in records torch's version) must record torch's
    TF32 switch, and ONNX Runtime its use_tf32: a missing record is not taken as fp32.
    """
    settings = info.get("precision_settings") or {}
    if info.get("compute_precision") != "f32":
        return False
    spec = ENGINE_SPECS.get(info.get("engine"))
    uses_torch = spec is not None and "torch" in spec.packages
    if uses_torch or "cuda_matmul_allow_tf32" in settings:
        if settings.get("cuda_matmul_allow_tf32") is not False:
            return False
    if info.get("ort_providers") or "cuda_use_tf32" in settings:
        if settings.get("cuda_use_tf32") != "0":
            return False
    return True


def really_on_cuda(info: dict) -> bool:
    """Whether the engine's own record says the computation ran on the GPU: its device, ONNX
    Runtime's first active provider, llama.cpp's offload of every layer in a build that has it."""
    if not str(info.get("device", "")).startswith("cuda"):
        return False
    if info.get("ort_providers") and info["ort_providers"][0] != "CUDAExecutionProvider":
        return False
    details = info.get("details") or {}
    if "gpu_offload_supported" in details:
        layers = (info.get("precision_settings") or {}).get("n_gpu_layers") or 0
        return bool(details["gpu_offload_supported"]) and layers > 0
    return True


def cuda_label(engine: str) -> str:
    return Configuration(engine, "cuda").label


def run_configuration(
    engine_name,
    provider,
    model_dir,
    artefact_dir,
    args,
    prompts,
    ref_ids,
    nvml,
    torch_cuda_engine,
    bandwidth_gb_s=None,
):
    import torch

    from serving_energy.engines import load_engine
    from serving_energy.engines.equivalence import check_equivalence

    record: dict = {"engine": engine_name, "provider": provider, "ok": False}
    try:
        started = time.perf_counter()
        engine = load_engine(engine_name, provider, model_dir, artefact_dir, args.threads)
        record["load_s"] = time.perf_counter() - started
        record["info"] = dataclasses.asdict(engine.info())
        # The first request after loading (a prompt length the load-time warm-up did not use):
        # a JIT that still compiles per shape, or lazy CUDA initialisation, shows here.
        first = engine.generate(prompts[-1] + " #", args.max_new_tokens)
        torch.cuda.synchronize()
        record["first_request_s"] = first.duration_s
        energy_before, util_before = nvml.energy_mj(), nvml.utilisation()
        with UtilisationSampler(nvml) as sampler:
            started = time.perf_counter()
            generations = [engine.generate(p, args.max_new_tokens) for p in prompts]
            torch.cuda.synchronize()
            record["generate_s"] = time.perf_counter() - started
        energy_after, util_after = nvml.energy_mj(), nvml.utilisation()
        record["nvml"] = {
            "energy_j": None
            if energy_before is None or energy_after is None
            else (energy_after - energy_before) / 1000,
            "utilisation_before_pct": util_before,
            "utilisation_after_pct": util_after,
            "during": sampler.summary(),
        }
        record["tokens_per_s"] = len(prompts) * args.max_new_tokens / record["generate_s"]
        record["median_request_s"] = statistics.median(g.duration_s for g in generations)
        record["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated()
        ids = [g.new_token_ids for g in generations]
        record["ids_equal_torch_cpu"] = ids == ref_ids
        record["mismatched_tokens_vs_torch_cpu"] = sum(
            a != b
            for got, want in zip(ids, ref_ids, strict=True)
            for a, b in zip(got, want, strict=True)
        )
        device_ok = really_on_cuda(record["info"])
        record["device_really_cuda"] = device_ok
        record["precision_fp32"] = precision_is_fp32(record["info"])
        if bandwidth_gb_s:
            from serving_energy.meters.roofline import roofline_point, weight_bytes_per_token

            weights = weight_bytes_per_token(model_dir, record["info"]["compute_precision"])
            point = roofline_point(record["tokens_per_s"], bandwidth_gb_s, weights.bytes_per_token)
            record["roofline"] = dataclasses.asdict(point)
        if torch_cuda_engine is not None and engine_name != REFERENCE_ENGINE:
            check = check_equivalence(engine, torch_cuda_engine, prompts, args.max_new_tokens)
            record["check_vs_torch_cuda"] = dataclasses.asdict(check)
            del record["check_vs_torch_cuda"]["per_prompt"]
        record["ok"] = device_ok and record["precision_fp32"] and record["ids_equal_torch_cpu"]
        if "check_vs_torch_cuda" in record:
            record["ok"] = record["ok"] and record["check_vs_torch_cuda"]["passed"]
        return record, engine
    except Exception as exc:  # noqa: BLE001 - recorded: the point of the script
        record["error"] = error_text(exc)
        return record, None


def markdown(report: dict) -> str:
    env = report["environment"]
    gpu = env.get("gpu", {})
    lines = [
        "# GPU validation of the CUDA serving configurations",
        "",
        f"- GPU: {gpu.get('name') or env.get('torch_device_name')}; driver "
        f"{gpu.get('driver_version')}; CUDA driver API {gpu.get('cuda_driver_version')}; "
        f"torch CUDA {env.get('torch_cuda_version')}",
        f"- ONNX Runtime providers: {env.get('onnxruntime_providers')}",
        f"- Libraries: {env.get('library_versions')}",
        f"- Engines: {', '.join(report.get('engines', ['torch', 'onnx', 'torchscript']))}",
        f"- {report['n_prompts']} prompts x {report['max_new_tokens']} new tokens, greedy; "
        f"stand-in geometry {report.get('geometry', 'tiny')}; started {report['started_at']}",
        f"- GPU read bandwidth (fp32 sum over a buffer >> L2): "
        f"{report.get('cuda_read_bandwidth_gb_s') or '-'} GB/s",
        "",
        "| model | configuration | ran on | precision | ids = torch CPU | check vs torch CUDA "
        "| tokens/s | of bound | GPU energy J (NVML counter) | GPU util % (mean) | error |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        info = row.get("info") or {}
        ran_on = info.get("device", "-")
        if info.get("ort_providers"):
            ran_on += f" ({info['ort_providers'][0]})"
        check = row.get("check_vs_torch_cuda")
        check_text = (
            "-"
            if not check
            else (
                f"{'pass' if check['passed'] else 'FAIL'} ({check['token_agreement']:.3f}, "
                f"max logit diff {check['max_logit_diff']:.1e})"
                if check.get("max_logit_diff") is not None
                else f"{'pass' if check['passed'] else 'FAIL'}"
            )
        )
        nvml = row.get("nvml") or {}
        during = nvml.get("during") or {}
        util = (during.get("gpu_util_pct") or {}).get("mean")
        error = (row.get("error") or "").splitlines()[0] if row.get("error") else ""
        energy = nvml.get("energy_j")
        speed = f"{row['tokens_per_s']:.1f}" if "tokens_per_s" in row else "-"
        energy_text = "-" if energy is None else f"{energy:.2f}"
        util_text = "-" if util is None else f"{util:.0f}"
        settings = info.get("precision_settings") or {}
        precision = info.get("compute_precision") or "-"
        if "cuda_use_tf32" in settings:
            precision += f" (use_tf32={settings['cuda_use_tf32']})"
        elif "cuda_matmul_allow_tf32" in settings:
            precision += f" (allow_tf32={settings['cuda_matmul_allow_tf32']})"
        roofline = row.get("roofline")
        bound_text = "-" if not roofline else f"{roofline['fraction_of_bound']:.2f}"
        lines.append(
            f"| {row['architecture']} | {cuda_label(row['engine'])} | {ran_on} | "
            f"{precision} | "
            f"{row.get('ids_equal_torch_cpu', '-')} | {check_text} | {speed} | {bound_text} | "
            f"{energy_text} | {util_text} | {error} |"
        )
    for skipped in report.get("not_run", []):
        lines.append(
            f"| {skipped['architecture']} | {cuda_label(skipped['engine'])} | not run | "
            f"- | - | - | - | - | - | - | {skipped['reason']} |"
        )
    lines += [
        "",
        f"All configurations ran on the GPU in fp32 and agreed with torch: {report['all_ok']}",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    args = parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.render:
        rendered = markdown(json.loads(args.render.read_text()))
        (args.out_dir / "validate_gpu.md").write_text(rendered)
        print(rendered)
        return 0
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="validate-gpu-"))
    nvml = Nvml()
    report = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_prompts": args.n_prompts,
        "max_new_tokens": args.max_new_tokens,
        "threads": args.threads,
        "geometry": args.geometry,
        "tokenizer": args.tokenizer,
        "engines": args.engines,
        "environment": environment(nvml),
        "results": [],
        "not_run": [
            {"architecture": a, "engine": e, "reason": reason}
            for (e, a), reason in args.impossible.items()
        ],
        "setup_errors": [],
    }
    prompts = list(PROMPTS[: args.n_prompts])
    if args.n_prompts > len(PROMPTS):
        prompts += humaneval_first_lines()[: args.n_prompts - len(PROMPTS)]
    bandwidth_gb_s = None
    if not args.no_roofline:
        try:
            from serving_energy.meters.roofline import measure_cuda_read_bandwidth

            measurement = measure_cuda_read_bandwidth()
            report["cuda_bandwidth"] = dataclasses.asdict(measurement)
            bandwidth_gb_s = measurement.read_bandwidth_gb_s
            report["cuda_read_bandwidth_gb_s"] = round(bandwidth_gb_s, 1)
        except Exception as exc:  # noqa: BLE001
            report["setup_errors"].append({"step": "roofline", "error": error_text(exc)})
    try:
        from serving_energy.data.standins import build_standin
        from serving_energy.engines import load_engine
        from serving_energy.engines.export import export_model
    except Exception as exc:  # noqa: BLE001
        report["setup_errors"].append({"step": "import", "error": error_text(exc)})
        load_engine = None

    for architecture in args.architectures if load_engine else []:
        model_dir = work_dir / architecture / "model"
        try:
            geometry = GEOMETRIES[args.geometry]
            build_standin(
                architecture,
                model_dir,
                n_layers=geometry["n_layers"],
                hidden_size=geometry["hidden_size"],
                n_heads=geometry["n_heads"],
                tokenizer=args.tokenizer,
                seed=0,
                extra=geometry["extra"],
            )
            reference = load_engine(REFERENCE_ENGINE, "cpu", model_dir, None, args.threads)
            ref_ids = [reference.generate(p, args.max_new_tokens).new_token_ids for p in prompts]
        except Exception as exc:  # noqa: BLE001
            report["setup_errors"].append(
                {"step": f"{architecture}: build/reference", "error": error_text(exc)}
            )
            continue
        artefacts: dict[str, Path | None] = {}
        engines = [e for e in args.engines if (e, architecture) not in args.impossible]
        for engine_name in engines:
            spec = ENGINE_SPECS[engine_name]
            if not spec.exported:  # it loads the model folder itself (torch, torch.compile)
                artefacts[engine_name] = None
                continue
            out = work_dir / architecture / f"{engine_name}-cuda"
            try:
                provider = "cuda" if spec.export_per_provider else None
                info = export_model(engine_name, model_dir, out, provider)
                artefacts[engine_name] = Path(info.artefact_dir)
            except Exception as exc:  # noqa: BLE001
                artefacts[engine_name] = out  # loading will fail and record why
                report["setup_errors"].append(
                    {"step": f"{architecture}: export {engine_name}", "error": error_text(exc)}
                )
        torch_cuda = None
        for engine_name in engines:
            record, engine = run_configuration(
                engine_name,
                "cuda",
                model_dir,
                artefacts[engine_name],
                args,
                prompts,
                ref_ids,
                nvml,
                torch_cuda,
                bandwidth_gb_s,
            )
            record["architecture"] = architecture
            report["results"].append(record)
            if engine_name == REFERENCE_ENGINE:
                torch_cuda = engine
    report["all_ok"] = bool(report["results"]) and all(r["ok"] for r in report["results"])
    report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    (args.out_dir / "validate_gpu.json").write_text(json.dumps(report, indent=2, default=str))
    (args.out_dir / "validate_gpu.md").write_text(markdown(report))
    print(markdown(report))
    for failure in report["setup_errors"]:
        print(f"setup error in {failure['step']}: {failure['error'].splitlines()[0]}")
    return 0 if report["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
