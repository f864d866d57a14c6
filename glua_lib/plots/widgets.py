"""The slider wiring the chapters use.

- :func:`frames_slider`: renders one frame per slider value ahead of time and links the slider to
  the frames in the browser (``jslink``), so it works live in Jupyter *and* in the static book,
  with no kernel.
- :func:`live_slider`: an ``ipywidgets.interactive`` over several parameters, recomputed by the
  kernel (Jupyter, Colab, JupyterHub); the static book shows its first frame.
"""
from __future__ import annotations

from typing import Sequence


from glua_lib.plots.common import DrawFn, figure_png


def frames_slider(draw: DrawFn, name: str, values: Sequence, dpi: int = 80,
                  description: str | None = None, start: int = 0):
    """A slider over ``values`` showing ``draw(**{name: v})`` that works without a kernel.

    Every frame is rendered ahead of time to a PNG ``ipywidgets.Image``; the frames sit in a
    ``Stack`` whose ``selected_index`` is linked to the slider in the browser (``jslink``). The
    embedded widget state therefore keeps working in the static HTML book. ``start`` is the
    position (index into ``values``) shown first.

    Returns:
        ``ipywidgets.VBox`` (slider above, frames below); its ``link`` attribute is the ``jslink``.
    """
    import ipywidgets as widgets

    values = list(values)
    if not values:
        raise ValueError("frames_slider needs at least one value")
    frames = [widgets.Image(value=figure_png(draw(**{name: v}), dpi=dpi), format="png")
              for v in values]
    if not 0 <= start < len(values):
        raise ValueError(f"start {start} outside 0..{len(values) - 1}")
    stack = widgets.Stack(children=frames, selected_index=start)
    slider = widgets.IntSlider(value=start, min=0, max=len(values) - 1,
                               description=description or name, continuous_update=True)
    box = widgets.VBox([slider, stack])
    box.add_class("glua-frames-slider")
    box.link = widgets.jslink((slider, "value"), (stack, "selected_index"))
    return box


def live_slider(draw: DrawFn, **params):
    """``ipywidgets.interactive`` over ``draw``: each keyword is a widget abbreviation.

    Recomputed by the kernel on every change (Jupyter, Colab, JupyterHub). Example::

        live_slider(plots.volume_slice, volume=fixed(vol), index=(0, len(vol) - 1))
    """
    import ipywidgets as widgets
    from IPython.display import display

    def _show(**kwargs):
        display(draw(**kwargs))

    return widgets.interactive(_show, **params)
