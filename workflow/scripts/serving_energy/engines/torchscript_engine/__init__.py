"""The torchscript engine, one plug-in: ``spec`` (pure data, read by the study and the rules),
``engine`` (imported only by the jobs that load it), ``export`` (its export job)."""
