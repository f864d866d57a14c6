"""Plotting functions, and the slider wiring the chapters use, by subject.

Every figure the book shows comes from a plain function here that draws into a matplotlib
``Figure`` and returns it, so it can be tested without a notebook; the notebooks only wire those
functions to sliders. The chapters call them as ``plots.<name>``:

- :mod:`~glua_lib.plots.volumes`: slices of volumes with labels, predictions, masks, heat maps;
- :mod:`~glua_lib.plots.charts`: per-class histograms and bars, curves, scatter plots;
- :mod:`~glua_lib.plots.models`: the style-transfer architecture, a decoded style mix;
- :mod:`~glua_lib.plots.widgets`: :func:`frames_slider` (frames rendered ahead, linked in the
  browser: live in Jupyter *and* in the static book, no kernel) and :func:`live_slider` (an
  ``ipywidgets.interactive`` recomputed by the kernel; the static book shows its first frame);
- :mod:`~glua_lib.plots.common`: the axis styling and a figure as PNG bytes.
"""
from glua_lib.plots.charts import (bar_per_class, bars_compared, class_histograms, class_scatter,
                                   curves, differences_chart)
from glua_lib.plots.common import DrawFn, figure_png
from glua_lib.plots.models import style_architecture, style_mix
from glua_lib.plots.volumes import (attention_explorer, class_translation_grid, heat_overlay,
                                    image_grid, label_overlay, mask_explorer, mask_overlay,
                                    modality_pair, prediction_row, translation_row, volume_slice)
from glua_lib.plots.widgets import frames_slider, live_slider

__all__ = [
    "DrawFn", "attention_explorer", "bar_per_class", "bars_compared", "class_histograms",
    "class_translation_grid",
    "class_scatter", "curves", "differences_chart",
    "figure_png", "frames_slider", "heat_overlay", "image_grid", "label_overlay", "live_slider",
    "mask_explorer", "mask_overlay", "modality_pair", "prediction_row", "style_architecture",
    "style_mix", "translation_row", "volume_slice",
]
