"""Keep imports that no engine uses out of the processes that load models.

transformers imports scikit-learn and SciPy whenever they are installed: scikit-learn (with
scipy.stats) for assisted generation's confidence threshold (``sklearn.metrics.roc_curve`` in
``generation/candidate_generator.py``), ``scipy.optimize`` for the object-detection losses that
``modeling_utils`` imports. No engine here generates with an assistant or loads a vision model, but
every model server, check and export paid both imports at load: a tiny stand-in's server load
took 6.40 s with them and 5.00 s without on 2 cores (benchmarks/bench_server_load.py), once per
run. Both packages stay installed (the analysis, OpenVINO's nncf
and pingouin need them); only transformers is told that they are not there, so a causal language
model loads exactly as before.
"""

from __future__ import annotations

import importlib
import sys

# transformers 4.57 keeps whether each optional package is installed in module-level flags here
_FLAGS_MODULE = "transformers.utils.import_utils"
_UNUSED_PACKAGE_FLAGS = ("_sklearn_available", "_scipy_available")
# ... and reads them when these modules are first imported
_READERS = ("transformers.generation.candidate_generator", "transformers.loss.loss_utils")


def skip_unused_transformers_imports() -> bool:
    """Make transformers' generation and modelling code import without scikit-learn and SciPy;
    call before the first ``from transformers import ...`` of a model-loading process.

    Returns whether it took effect: False where that code is already imported (the packages are
    imported then, nothing is saved) or where this transformers keeps its flags elsewhere (then
    the import is only slower, never different).
    """
    if any(reader in sys.modules for reader in _READERS):
        return False
    flags = importlib.import_module(_FLAGS_MODULE)
    if not all(hasattr(flags, flag) for flag in _UNUSED_PACKAGE_FLAGS):
        return False
    for flag in _UNUSED_PACKAGE_FLAGS:
        setattr(flags, flag, False)
    return True
