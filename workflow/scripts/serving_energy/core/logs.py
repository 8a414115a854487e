"""Logging for workflow jobs: everything to the rule's log file, a calm console.

Inside ``log_to`` the job's standard error (file descriptor 2) is the log file, so library chatter,
Python warnings (TorchScript's TracerWarnings, deprecations) and C-level output of the engines all
land there, in order. The console keeps what a person watching needs: warnings, progress
(``progress``) and, when the job fails, one line with the error and where its traceback is; the
job then exits with status 1. Snakemake shows a failed job's log (``show-failed-logs``), so the
traceback appears once.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from serving_energy.core import progress
from serving_energy.core.failures import FAILED_MARK

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"


@contextmanager
def log_to(path: str | Path, name: str = "serving_energy") -> Iterator[logging.Logger]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved_fd = os.dup(2)
    console = os.fdopen(os.dup(saved_fd), "w", buffering=1, encoding="utf-8", errors="replace")
    log_file = path.open("w", buffering=1, encoding="utf-8", errors="replace")
    os.dup2(log_file.fileno(), 2)
    progress.set_console(console)
    logging.captureWarnings(True)

    file_handler = logging.StreamHandler(log_file)
    file_handler.setFormatter(logging.Formatter(FORMAT))
    console_handler = logging.StreamHandler(console)
    console_handler.setLevel(logging.WARNING)
    console_handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    root = logging.getLogger()
    previous_level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(file_handler)
    logger = logging.getLogger(name)
    logger.addHandler(console_handler)
    try:
        yield logger
    except SystemExit:
        raise
    except BaseException as error:
        logger.removeHandler(console_handler)  # the traceback goes to the log only
        logger.exception(FAILED_MARK)  # the failure summary finds failed jobs by it
        first_line = (str(error).strip().splitlines() or [""])[0]
        console.write(f"ERROR {type(error).__name__}: {first_line} (full log: {path})\n")
        # Exit without Python printing the traceback a second time; the job still fails.
        raise SystemExit(1) from None
    finally:
        logger.removeHandler(console_handler)
        root.removeHandler(file_handler)
        root.setLevel(previous_level)
        logging.captureWarnings(False)
        progress.set_console(None)
        sys.stderr.flush()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        log_file.close()
        console.close()
