"""Infrastructure every wing uses: atomic files, logs, progress on the console, process lifecycle,
and what the machine is. Imports nothing else of the library."""
