import os
import time

from serving_energy.core.failures import FAILED_MARK, failed_jobs, failure_summary


def _log(path, text, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def test_only_this_invocations_failed_logs_are_listed_with_their_reason(tmp_path):
    now = time.time()
    failed = tmp_path / "export" / "m" / "onnx.log"
    _log(failed, f"x INFO start\nx ERROR serving_energy: {FAILED_MARK}\nTraceback\n"
         '  File "a.py", line 1\nExportError: cannot export m: out of memory\n', now)  # fmt: skip
    _log(tmp_path / "export" / "m" / "openvino.log", "x INFO exported\n", now)
    _log(tmp_path / "check" / "old.log", f"{FAILED_MARK}\nold error\n", now - 3600)
    jobs = failed_jobs(tmp_path, now - 10)
    assert [(j.stage, j.log, j.reason) for j in jobs] == [
        ("export", failed, "ExportError: cannot export m: out of memory")
    ]
    summary = failure_summary(tmp_path, now - 10, ["/s/.snakemake/log/x.log"])
    assert "1 job(s) failed" in summary and str(failed) in summary
    assert "out of memory" in summary and "/s/.snakemake/log/x.log" in summary


def test_a_failure_outside_the_jobs_says_so(tmp_path):
    assert "outside the study's jobs" in failure_summary(tmp_path, time.time(), [])
