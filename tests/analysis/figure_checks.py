"""Readability checks of a drawn figure: every text inside the image, no label over its ticks."""

from __future__ import annotations

import matplotlib.text
from matplotlib.figure import Figure

TOLERANCE_PX = 1.0


def _visible_text(text: matplotlib.text.Text) -> bool:
    return text.get_visible() and bool(text.get_text().strip())


def _undrawn_tick_labels(figure: Figure) -> set[int]:
    """Tick labels that matplotlib keeps but does not draw: their tick lies outside the axis'
    view interval (a timeline's x axis ends between two tick locations)."""
    undrawn = set()
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = (high - low) or 1.0
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                location = tick.get_loc()
                if location is None or not (low - 1e-9 * span <= location <= high + 1e-9 * span):
                    undrawn.update({id(tick.label1), id(tick.label2)})
    return undrawn


def layout_problems(figure: Figure, name: str = "figure") -> list[str]:
    """What a reader would see as broken: text cut off at the image's edge, an axis label over
    its own tick labels, a panel title over the figure's title or over another panel's ticks."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    width, height = figure.bbox.width, figure.bbox.height
    problems = []

    def extent(text):
        return text.get_window_extent(renderer)

    undrawn = _undrawn_tick_labels(figure)
    for text in figure.findobj(matplotlib.text.Text):
        if not _visible_text(text) or id(text) in undrawn:
            continue
        box = extent(text)
        if (
            box.x0 < -TOLERANCE_PX
            or box.y0 < -TOLERANCE_PX
            or box.x1 > width + TOLERANCE_PX
            or box.y1 > height + TOLERANCE_PX
        ):
            problems.append(f"{name}: text {text.get_text()[:60]!r} leaves the image ({box})")
    axes = [ax for ax in figure.axes if ax.get_visible()]
    suptitle = figure._suptitle  # noqa: SLF001 (matplotlib keeps no public handle)
    for ax in axes:
        for label, ticks in (
            (ax.yaxis.label, ax.get_yticklabels()),
            (ax.xaxis.label, ax.get_xticklabels()),
        ):
            if not _visible_text(label):
                continue
            for tick in ticks:
                if _visible_text(tick) and extent(label).overlaps(extent(tick)):
                    problems.append(
                        f"{name}: axis label {label.get_text()[:40]!r} overlaps tick "
                        f"{tick.get_text()!r}"
                    )
                    break
        title = ax.title
        if not _visible_text(title):
            continue
        if suptitle is not None and _visible_text(suptitle):
            if extent(title).overlaps(extent(suptitle)):
                problems.append(f"{name}: panel title {title.get_text()!r} overlaps the title")
        for other in axes:
            if other is ax:
                continue
            for tick in [*other.get_xticklabels(), other.xaxis.label]:
                if _visible_text(tick) and extent(title).overlaps(extent(tick)):
                    problems.append(
                        f"{name}: panel title {title.get_text()!r} overlaps "
                        f"{tick.get_text()[:30]!r} of another panel"
                    )
                    break
    return problems
