import ipywidgets as widgets
import numpy as np
import pytest
from matplotlib.figure import Figure

from glua_lib import plots


@pytest.fixture
def vol():
    image = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    label = np.zeros((3, 4, 5), np.uint8)
    label[1, 1:3, 1:4] = 2
    return image, label


def test_volume_slice_draws_that_slice_and_its_overlay(vol):
    image, label = vol
    fig = plots.volume_slice(image, 1, label, ("bg", "a", "b"), title="ct")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), image[1])
    overlay = np.asarray(ax.images[1].get_array())
    assert overlay.shape == (4, 5, 4)
    assert (overlay[..., 3] > 0).sum() == 6  # alpha only where the label is set
    assert ax.get_title() == "ct slice 1"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_volume_slice_errors(vol):
    image, label = vol
    with pytest.raises(IndexError, match="slice 3 outside 0..2"):
        plots.volume_slice(image, 3)
    with pytest.raises(ValueError, match="D×H×W"):
        plots.volume_slice(image[0], 0)
    with pytest.raises(ValueError, match="label shape"):
        plots.volume_slice(image, 0, label[:, :2])


def test_frames_slider_prerenders_one_png_per_value_and_links_in_the_browser(vol):
    image, label = vol
    box = plots.frames_slider(lambda index: plots.volume_slice(image, index, label), "index",
                              range(3), description="slice")
    slider, stack = box.children
    assert isinstance(slider, widgets.IntSlider) and (slider.min, slider.max) == (0, 2)
    assert slider.description == "slice"
    frames = [bytes(im.value) for im in stack.children]
    assert len(frames) == 3 and all(f.startswith(b"\x89PNG") for f in frames)
    assert len(set(frames)) == 3  # each slice renders differently
    link = box.link
    assert type(link).__name__ == "Link"  # jslink: runs in the browser, no kernel needed
    assert link.source == (slider, "value") and link.target == (stack, "selected_index")
    with pytest.raises(ValueError):
        plots.frames_slider(lambda index: None, "index", [])


def test_live_slider_builds_controls_for_each_parameter(vol):
    image, _ = vol
    w = plots.live_slider(plots.volume_slice, volume=widgets.fixed(image), index=(0, 2))
    names = [c.description for c in w.children if hasattr(c, "description")]
    assert "index" in names
