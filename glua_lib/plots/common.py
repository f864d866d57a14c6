"""What every figure of the book shares: the axis styling and a figure as PNG bytes."""
from __future__ import annotations

import io
from typing import Callable

from matplotlib.figure import Figure


DrawFn = Callable[..., Figure]


def _finish(fig: Figure, ax, ylabel: str, title: str = "", xlabel: str = "",
            legend: bool = False) -> Figure:
    """The book's axis styling: small labels and ticks, optional legend and title."""
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=8)
    if legend:
        ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """Render ``fig`` to PNG bytes.

    Figures here are plain ``matplotlib.figure.Figure`` objects, not pyplot figures: nothing is
    registered globally, nothing needs closing, and the importing code's backend is left alone.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()
