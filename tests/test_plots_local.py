"""The chapter 3 plots: the mask overlay, the live mask explorer and the per-class scatter."""
import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from glua_lib import plots
from glua_lib.local.mask import local_mask, resize_mask

NAMES = ("bg", "a", "b")


@pytest.fixture
def stack():
    image = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    mask = np.array([[[0.0, 1.0], [0.5, 0.25]], [[1.0, 0.0], [0.0, 0.0]]], np.float32)  # 2×2×2
    label = np.zeros((2, 4, 4), np.uint8)
    label[0, :2, :] = 1  # class a: top half of image 0
    label[0, 2:, :2] = 2  # class b: bottom-left quarter
    gap = np.linspace(0, 2, 32, dtype=np.float32).reshape(2, 4, 4)
    return image, mask, label, gap


def test_mask_overlay_draws_the_image_and_the_enlarged_mask(stack):
    image, mask, label, _ = stack
    fig = plots.mask_overlay(image, mask[:, None], 0, label, class_names=NAMES, alpha=0.3,
                             title="CT", mask_label="M")
    assert isinstance(fig, Figure) and len(fig.axes) == 3  # two panels + the colour bar
    left, right = fig.axes[0], fig.axes[1]
    np.testing.assert_array_equal(left.images[0].get_array(), image[0])
    assert left.get_title() == "CT image 0"
    assert (np.asarray(left.images[1].get_array())[..., 3] > 0).sum() == 12  # labelled pixels
    np.testing.assert_array_equal(right.images[0].get_array(), image[0])
    drawn = np.asarray(right.images[1].get_array())
    expected = np.kron(mask[0], np.ones((2, 2)))  # each feature location becomes a 2×2 block
    np.testing.assert_array_equal(drawn, expected)
    assert right.images[1].get_alpha() == 0.3
    assert right.images[1].get_clim() == (0.0, 1.0)
    assert right.get_title() == "M"


def test_mask_overlay_shows_the_mask_in_the_colour_bar_colours_with_class_outlines(stack):
    image, mask, label, gap = stack
    fig = plots.mask_overlay(image, mask, 0, label, class_names=NAMES, gap=gap)
    mask_ax, gap_ax = fig.axes[1], fig.axes[2]  # the panels; the colour bars come after
    assert mask_ax.images[1].get_alpha() in (None, 1.0)  # opaque: the colours are the bar's
    tab10 = matplotlib.colormaps["tab10"]
    for ax in (mask_ax, gap_ax):  # one outline per class present, in its label colour
        outlines = [c for c in ax.collections if isinstance(c, ContourSet)]
        assert len(outlines) == 2
        assert [tuple(np.round(c.get_edgecolor()[0][:3], 3)) for c in outlines] == [
            tuple(np.round(tab10(k)[:3], 3)) for k in (0, 1)]
    bare = plots.mask_overlay(image, mask, 0)
    assert not [c for c in bare.axes[1].collections if isinstance(c, ContourSet)]


def test_mask_overlay_matches_the_library_resize(stack):
    image, mask, _, _ = stack
    fig = plots.mask_overlay(np.zeros((2, 6, 6)), mask, 1)
    ours = np.asarray(fig.axes[1].images[1].get_array())
    theirs = resize_mask(torch.from_numpy(mask[:, None]), (6, 6))[1, 0].numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_mask_overlay_class_filter_keeps_the_mask_inside_that_class_only(stack):
    image, mask, label, _ = stack
    fig = plots.mask_overlay(image, mask, 0, label, class_filter="b", class_names=NAMES)
    drawn = np.asarray(fig.axes[1].images[1].get_array())
    expected = np.zeros((4, 4))
    expected[2:, :2] = 0.5  # class b sits under the mask value 0.5
    np.testing.assert_array_equal(drawn, expected)
    assert fig.axes[1].get_title().endswith("inside b (mean 0.50)")
    by_index = plots.mask_overlay(image, mask, 0, label, class_filter=1, class_names=NAMES)
    assert by_index.axes[1].get_title().endswith("inside a (mean 0.50)")  # (0 + 1) / 2
    absent = plots.mask_overlay(image, mask, 1, label, class_filter=2, class_names=NAMES)
    assert not np.asarray(absent.axes[1].images[1].get_array()).any()
    assert "no b here" in absent.axes[1].get_title()


def test_mask_overlay_gap_panel(stack):
    image, mask, label, gap = stack
    fig = plots.mask_overlay(image, mask, 1, label, gap=gap)
    gap_ax = [ax for ax in fig.axes if ax.get_title() == "true gap map"]
    assert len(gap_ax) == 1
    np.testing.assert_array_equal(gap_ax[0].images[0].get_array(), gap[1])
    assert gap_ax[0].images[0].get_clim() == (0.0, pytest.approx(2.0))


def test_mask_overlay_errors(stack):
    image, mask, label, gap = stack
    with pytest.raises(IndexError, match="image 2 outside 0..1"):
        plots.mask_overlay(image, mask, 2)
    with pytest.raises(ValueError, match="2 images but 1 masks"):
        plots.mask_overlay(image, mask[:1], 0)
    with pytest.raises(ValueError, match="larger than the image"):
        plots.mask_overlay(image, np.zeros((2, 8, 8)), 0)
    with pytest.raises(ValueError, match="label shape"):
        plots.mask_overlay(image, mask, 0, label[:, :2])
    with pytest.raises(ValueError, match="needs the label"):
        plots.mask_overlay(image, mask, 0, class_filter=1)
    with pytest.raises(ValueError, match="unknown class 'c'"):
        plots.mask_overlay(image, mask, 0, label, class_filter="c", class_names=NAMES)


def test_mask_explorer_recomputes_the_mask_with_temperature_and_top_k(stack):
    image, _, label, _ = stack
    score = np.array([[[0.1, 0.4], [0.2, 0.8]], [[0.3, 0.3], [0.3, 0.6]]], np.float32)[:, None]
    scores = {2: score, 3: score[..., :1, :1]}
    fig = plots.mask_explorer(image, scores, 0, 2, temperature=0.5, top_k=0.5, alpha=0.7,
                              label=label, class_names=NAMES)
    drawn = np.asarray(fig.axes[1].images[1].get_array())
    want = local_mask(torch.from_numpy(score[:1]), "max", 0.5, 0.5)[0, 0].numpy()
    np.testing.assert_allclose(drawn, np.kron(want, np.ones((2, 2))), rtol=1e-6)
    assert (want > 0).sum() == 2 and want.max() == pytest.approx(1.0)  # top half, max 1
    assert fig.axes[1].images[1].get_alpha() == 0.7
    assert fig.axes[1].get_title() == "M, level 2 (2×2), τ=0.5, top-k=0.5"
    coarse = plots.mask_explorer(image, scores, 1, 3, class_filter="a", label=label,
                                 class_names=NAMES)
    assert "level 3 (1×1)" in coarse.axes[1].get_title()
    assert "no a here" in coarse.axes[1].get_title()  # image 1 has no labels
    with pytest.raises(ValueError, match="no scores for level 4"):
        plots.mask_explorer(image, scores, 0, 4)


def test_mask_explorer_works_in_a_live_slider(stack):
    import ipywidgets as widgets

    image, _, label, _ = stack
    scores = {2: np.random.default_rng(0).random((2, 1, 2, 2)).astype(np.float32)}
    w = plots.live_slider(plots.mask_explorer, image=widgets.fixed(image),
                          scores=widgets.fixed(scores), index=(0, 1), level=[2],
                          temperature=(0.1, 2.0), top_k=(0.25, 1.0, 0.25), alpha=(0.0, 1.0),
                          class_filter=[("everywhere", None), ("a", 1)],
                          label=widgets.fixed(label), class_names=widgets.fixed(NAMES))
    names = {c.description for c in w.children if hasattr(c, "description")}
    assert {"index", "level", "temperature", "top_k", "alpha", "class_filter"} <= names


def test_class_scatter_plots_one_series_per_name_with_class_labels():
    gap = {"a": 0.6, "b": 0.1, "c": 0.2}
    series = {"start": {"a": 0.3, "b": 0.5, "c": float("nan")}, "end": {"a": 0.4, "b": 0.2}}
    fig = plots.class_scatter(gap, series, "mean gap", "mean mask", title="t")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["start", "end"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0.6, 0.1])  # nan point skipped
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [0.3, 0.5])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.4, 0.2])
    assert [t.get_text() for t in ax.texts] == ["a", "b", "a", "b"]
    assert ax.get_title() == "t" and ax.get_xlabel() == "mean gap"


def test_attention_explorer_shows_the_mask_of_a_training_step(stack):
    image, mask, label, gap = stack
    masks = {0: np.zeros_like(mask)[:, None], 150: mask[:, None]}
    fig = plots.attention_explorer(image, masks, 0, 150, alpha=0.6, class_filter="a",
                                   label=label, class_names=NAMES, gap=gap)
    drawn = np.asarray(fig.axes[1].images[1].get_array())
    want = np.kron(mask[0], np.ones((2, 2))) * (label[0] == 1)  # the mask inside class a only
    np.testing.assert_allclose(drawn, want)
    assert fig.axes[1].images[1].get_alpha() == 0.6
    assert fig.axes[1].get_title().startswith("m = |tanh(D1(f))| (2×2) after 150 steps")
    assert "inside a (mean 0.50)" in fig.axes[1].get_title()  # (0 + 1 + 0 + 1) / 4 over a's pixels
    assert np.asarray(plots.attention_explorer(image, masks, 1, 0).axes[1].images[1]
                      .get_array()).max() == 0.0
    with pytest.raises(ValueError, match=r"no masks after step 7; steps: \[0, 150\]"):
        plots.attention_explorer(image, masks, 0, 7)
