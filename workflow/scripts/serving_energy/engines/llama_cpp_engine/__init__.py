"""The llama_cpp engine, one plug-in: ``spec`` (pure data, read by the study and the rules),
``export`` (a GGUF file by llama.cpp's own converter, ``converter`` finds it) and ``engine``
(llama.cpp's C API through llama-cpp-python, imported only by the jobs that load it)."""
