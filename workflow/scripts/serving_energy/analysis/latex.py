"""A small booktabs LaTeX table writer.

Written by hand rather than with pandas' Styler so the analysis needs neither pandas nor jinja2
for its tables, and so the escaping of the paper's configuration names (``<ONNX, CPU>``) is ours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # Plain < and > print as inverted exclamation marks in the default OT1 encoding.
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def escape(text: str) -> str:
    return "".join(_SPECIAL.get(char, char) for char in text)


@dataclass(frozen=True)
class Column:
    """One printed column: the frame's column, its header (plain text) and number format."""

    name: str
    header: str
    number_format: str = "{:.2f}"
    align: str = "r"


def _cell(value: object, number_format: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return number_format.format(value)
    return escape(str(value))


def _body(frame: pl.DataFrame, columns: Sequence[Column], group_by: str | None) -> list[str]:
    names = [c.name for c in columns]
    blank_at = names.index(group_by) if group_by in names else None
    lines: list[str] = []
    previous_group: object = object()
    for index, row in enumerate(frame.iter_rows(named=True)):
        cells = [_cell(row[c.name], c.number_format) for c in columns]
        if group_by is not None:
            group = row[group_by]
            if group == previous_group and blank_at is not None:
                cells[blank_at] = ""
            elif group != previous_group and index > 0:
                lines.append(r"\midrule")
            previous_group = group
        lines.append(" & ".join(cells) + r" \\")
    return lines


def booktabs(
    frame: pl.DataFrame,
    columns: Sequence[Column],
    *,
    caption: str | None = None,
    label: str | None = None,
    group_by: str | None = None,
    long: bool = False,
) -> str:
    """The frame as a booktabs ``tabular`` (inside a ``table`` when a caption or label is given).

    ``group_by`` names a column whose repeated values are printed once, with a ``\\midrule``
    between groups, as the paper's size-category tables do. ``long=True`` writes a
    ``longtable`` (needs ``\\usepackage{longtable}``) for tables that run over pages.
    """
    spec = "".join(c.align for c in columns)
    header = [r"\toprule", " & ".join(escape(c.header) for c in columns) + r" \\", r"\midrule"]
    body = _body(frame, columns, group_by)
    if long:
        lines = [f"\\begin{{longtable}}{{{spec}}}"]
        if caption is not None:
            lines.append(f"\\caption{{{escape(caption)}}}")
        if label is not None:
            lines.append(f"\\label{{{label}}}")
        if caption is not None or label is not None:
            lines[-1] += r" \\"
        lines += [*header, r"\endhead", r"\bottomrule", r"\endfoot", *body, r"\end{longtable}"]
        return "\n".join(lines) + "\n"
    lines = [f"\\begin{{tabular}}{{{spec}}}", *header, *body, r"\bottomrule", r"\end{tabular}"]
    if caption is None and label is None:
        return "\n".join(lines) + "\n"
    wrapped = [r"\begin{table}[htbp]", r"\centering"]
    if caption is not None:
        wrapped.append(f"\\caption{{{escape(caption)}}}")
    if label is not None:
        wrapped.append(f"\\label{{{label}}}")
    wrapped += lines + [r"\end{table}"]
    return "\n".join(wrapped) + "\n"


def write_booktabs(
    frame: pl.DataFrame,
    path: Path,
    columns: Sequence[Column],
    *,
    caption: str | None = None,
    label: str | None = None,
    group_by: str | None = None,
    long: bool = False,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = booktabs(frame, columns, caption=caption, label=label, group_by=group_by, long=long)
    path.write_text(text, encoding="utf-8")
    return path
