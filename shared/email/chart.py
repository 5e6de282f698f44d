"""Charts people read, as PNG: labelled axes, each bar's value, the threshold line named in the chart.

PNG rather than SVG because many mail clients (Gmail, Outlook) block SVG; the email attaches it as an
inline image (Content-ID). The text part keeps the figures as text (render.py), for screen readers and
text-only clients. Drawn with matplotlib's object API on the Agg canvas (no pyplot, no GUI backend, no
global figure state); matplotlib is imported on the first chart, never at cold start (function_app
imports none of this). The local dashboard (tools/dashboard.py) draws its charts here too.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from shared.money import ISO_4217_MINOR_UNITS, display_money, is_currency

if TYPE_CHECKING:
    from matplotlib.axes import Axes

BAR = "#7890b0"
LATEST = "#c44030"  # the bar of the period that fired
REFERENCE = "#282828"
FORECAST = "#b45309"
GRID = "#e5e7eb"
TEXT = "#374151"
DPI = 100
# More bars than this and the value labels turn upright and the tick labels thin out, so none overlap.
FLAT_LABELS_UP_TO = 14


@dataclass(frozen=True)
class Line:
    """One series of a line chart: y per x position (None: no point there), drawn dashed or not."""

    name: str
    values: tuple[Decimal | None, ...]
    color: str = BAR
    dashed: bool = False


def value_text(value: Decimal, unit: str) -> str:
    """A value short enough to sit on a bar: "$12.50", "$1.2k", "<$0.01", "4.1M", "950"."""
    if value == 0:
        return "0"
    money = is_currency(unit)
    # Where the currency goes: "$0.00" -> "$" before, "0.00 CHF" -> the code after.
    symbol = display_money(Decimal(0), unit).partition("0")[0] if money else ""
    code = f" {unit}" if money and not symbol else ""
    for size, suffix in ((Decimal(10) ** 9, "G"), (Decimal(10) ** 6, "M"), (Decimal(1000), "k")):
        if abs(value) >= size:
            return f"{symbol}{value / size:.1f}{suffix}{code}"
    if not money:
        return f"{int(value):,}"
    smallest = Decimal(1).scaleb(-ISO_4217_MINOR_UNITS[unit])
    # A positive amount below the currency's minor unit says so rather than showing 0.
    return f"<{display_money(smallest, unit)}" if 0 < abs(value) < smallest / 2 else display_money(value, unit)


def axis_label(unit: str, what: str = "cost") -> str:
    return f"{what} ({unit})" if is_currency(unit) else unit


def bar_chart_png(
    labels: Sequence[str],
    values: Sequence[Decimal],
    *,
    unit: str,
    x_label: str,
    y_label: str = "",
    reference: Decimal | None = None,
    reference_label: str = "threshold",
    highlight_last: bool = True,
    width_px: int = 640,
    height_px: int = 240,
) -> bytes:
    """Bars for `values` (oldest first) at `labels`, each with its value; the last highlighted; a dashed
    line at `reference` named `reference_label` and its value ("threshold $4.00")."""
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values")
    figure, axes = _figure(width_px, height_px)
    positions = range(len(values))
    numbers = [float(value) for value in values]
    colors = [LATEST if highlight_last and index == len(values) - 1 else BAR for index in positions]
    bars = axes.bar(positions, numbers, color=colors, width=0.75, zorder=2)
    upright = len(values) > FLAT_LABELS_UP_TO
    axes.bar_label(
        bars,
        labels=[value_text(value, unit) if value else "" for value in values],
        padding=2,
        fontsize=7 if upright else 8,
        rotation=90 if upright else 0,
        color=TEXT,
    )
    step = max(1, -(-len(labels) // 12))  # at most about 12 tick labels
    ticks = [index for index in positions if (len(labels) - 1 - index) % step == 0]  # the last one always shown
    axes.set_xticks(ticks, [labels[index] for index in ticks], fontsize=8)
    top = max([*numbers, float(reference or 0), 0.0])
    if reference is not None:
        axes.axhline(float(reference), color=REFERENCE, linestyle=(0, (4, 3)), linewidth=1.2, zorder=3)
        axes.annotate(
            f"{reference_label} {value_text(reference, unit)}",
            xy=(0.0, float(reference)),
            xycoords=("axes fraction", "data"),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=8,
            color=REFERENCE,
            fontweight="bold",
        )
    # Room above the tallest bar for its label (upright labels need more).
    axes.set_ylim(0, top * (1.35 if upright else 1.2) if top > 0 else 1)
    axes.set_xlim(-0.6, max(len(values), 1) - 0.4)
    _label_axes(axes, unit, x_label, y_label)
    return _png(figure)


def line_chart_png(
    labels: Sequence[str],
    lines: Sequence[Line],
    *,
    unit: str,
    x_label: str,
    y_label: str = "",
    reference: Decimal | None = None,
    reference_label: str = "budget",
    width_px: int = 640,
    height_px: int = 240,
) -> bytes:
    """Series over `labels` with a legend naming each; a dashed line at `reference` named with its value."""
    figure, axes = _figure(width_px, height_px)
    top = float(reference or 0)
    for line in lines:
        if len(line.values) != len(labels):
            raise ValueError(f"series {line.name!r}: {len(line.values)} values for {len(labels)} labels")
        points = [(index, float(value)) for index, value in enumerate(line.values) if value is not None]
        if not points:
            continue
        top = max(top, *(y for _, y in points))
        axes.plot(
            [x for x, _ in points],
            [y for _, y in points],
            color=line.color,
            linestyle="--" if line.dashed else "-",
            linewidth=1.8,
            marker="" if len(points) > 1 else "o",
            label=line.name,
            zorder=3,
        )
        last_x, last_y = points[-1]
        axes.annotate(
            value_text(Decimal(str(last_y)), unit), xy=(last_x, last_y), xytext=(3, 3), textcoords="offset points",
            fontsize=8, color=line.color,
        )  # fmt: skip
    if reference is not None:
        axes.axhline(
            float(reference), color=REFERENCE, linestyle=(0, (4, 3)), linewidth=1.2, zorder=2,
            label=f"{reference_label} {value_text(reference, unit)}",
        )  # fmt: skip
    step = max(1, -(-len(labels) // 12))
    ticks = [index for index in range(len(labels)) if (len(labels) - 1 - index) % step == 0]
    axes.set_xticks(ticks, [labels[index] for index in ticks], fontsize=8)
    axes.set_xlim(-0.5, max(len(labels), 1) - 0.5)
    axes.set_ylim(0, top * 1.2 if top > 0 else 1)
    _label_axes(axes, unit, x_label, y_label)
    axes.legend(fontsize=8, loc="upper left", frameon=False)
    return _png(figure)


def _figure(width_px: int, height_px: int) -> tuple[Any, Axes]:
    figure_class = _figure_class()
    figure = figure_class(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    # Fixed margins (in pixels) rather than a layout engine: a constrained layout cost ~60% of a chart's time.
    figure.subplots_adjust(left=64 / width_px, right=1 - 12 / width_px, bottom=44 / height_px, top=1 - 10 / height_px)
    axes = figure.add_subplot()
    axes.grid(axis="y", color=GRID, linewidth=0.8, zorder=0)
    axes.tick_params(labelsize=8, colors=TEXT)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _label_axes(axes: Axes, unit: str, x_label: str, y_label: str) -> None:
    from matplotlib.ticker import FuncFormatter

    axes.set_xlabel(x_label, fontsize=9, color=TEXT)
    axes.set_ylabel(y_label or axis_label(unit), fontsize=9, color=TEXT)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _: value_text(Decimal(f"{y:.6f}"), unit)))


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    # Exactly width_px x height_px (no bbox_inches="tight"): the <img> tag states that size.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


@cache
def _figure_class() -> Any:
    """matplotlib's Figure on the Agg canvas, imported on the first chart (not at cold start)."""
    import matplotlib

    matplotlib.use("Agg")  # no GUI backend; a process-wide choice, made before anything draws
    # Every text is drawn as written: "$2 to $3" is not TeX math (mathtext would parse it, or fail on it).
    matplotlib.rcParams["text.parse_math"] = False
    from matplotlib.figure import Figure

    return Figure
