"""The torch_compile engine, one plug-in: ``spec`` (pure data, read by the study and the rules),
``engine`` (imported only by the jobs that load it). It loads the model folder itself: no export."""
