"""From measured runs to the paper's outputs: the merged runs table, the analysis method, which
runs enter, the tests, tables, figures, LaTeX and the replication package."""
