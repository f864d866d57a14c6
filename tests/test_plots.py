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
                              range(3), description="slice", start=1)
    slider, stack = box.children
    assert isinstance(slider, widgets.IntSlider) and (slider.min, slider.max) == (0, 2)
    assert slider.description == "slice" and slider.value == stack.selected_index == 1
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


def test_modality_pair_shows_both_modalities(vol):
    image, label = vol
    fig = plots.modality_pair(image, image[:2] * -1, 2, label, label[:2], ("bg", "a", "b"))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["MR, slice 2", "CT, slice 1"]  # the shorter CT volume clamps the index
    assert len(fig.axes[0].images) == 2  # image + overlay
    fig = plots.modality_pair(image, image, 0, label, label, overlay=False)
    assert all(len(ax.images) == 1 for ax in fig.axes)


def test_class_histograms_one_panel_per_class_with_both_modalities():
    mr = [np.array([0.0, 0.0, 1.0, 1.0])]
    ct = [np.array([0.5, 0.5, -1.0, -1.0])]
    lab = [np.array([0, 0, 1, 1])]
    fig = plots.class_histograms(mr, lab, ct, lab, ("bg", "organ"), bins=4)
    assert [ax.get_title() for ax in fig.axes] == ["bg", "organ"]
    organ = fig.axes[1]
    heights = [p.get_height() for p in organ.patches]
    assert len(heights) == 8 and sum(h > 0 for h in heights) == 2  # one filled bin per modality


def test_bar_per_class_heights_and_errors():
    fig = plots.bar_per_class({"MYO": 0.5, "AA": 0.1}, "gap", errors={"MYO": 0.1, "AA": 0.0})
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [0.5, 0.1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MYO", "AA"]


def test_heat_overlay_checks_shapes(vol):
    image, label = vol
    fig = plots.heat_overlay(image, label.astype(float), 1, heat_label="gap")
    assert fig.axes[1].get_title() == "gap"
    np.testing.assert_array_equal(fig.axes[1].images[1].get_array(), label[1])
    with pytest.raises(ValueError, match="heat shape"):
        plots.heat_overlay(image, label[:1], 0)


def test_prediction_row_one_panel_per_method(vol):
    image, label = vol
    fig = plots.prediction_row(image, label, {"none": np.zeros_like(label), "oracle": label}, 1,
                               ("bg", "a", "b"))
    assert [ax.get_title() for ax in fig.axes] == ["ground truth, slice 1", "none", "oracle"]
    assert len(fig.axes[1].images) == 2 and len(fig.legends) == 1
    np.testing.assert_array_equal(fig.axes[1].images[1].get_array()[..., 3], 0)  # empty: clear
    with pytest.raises(ValueError, match="prediction 'x' shape"):
        plots.prediction_row(image, label, {"x": label[:1]}, 0)


def test_curves_draws_each_series():
    fig = plots.curves({"a": ([0, 1], [1.0, 0.5]), "b": ([0, 1], [2.0, 1.0])}, "step", "loss")
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["a", "b"]
    assert list(lines[1].get_ydata()) == [2.0, 1.0]


def test_style_architecture_names_every_part():
    fig = plots.style_architecture("munit")
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for part in ("content", "style encoder", "AdaIN decoder", "content critic", "image critics"):
        assert part in texts, part
    assert len(fig.axes[0].patches) + len(fig.axes[0].texts) > 10
    default = " ".join(t.get_text() for t in plots.style_architecture().axes[0].texts)
    for part in ("one encoder", "domain label", "MLP → AdaIN", "one decoder", "one critic",
                 "image pools", "×20"):  # the authors' translator, the profiles' default
        assert part in default, part
    assert "style encoder" not in default
    with pytest.raises(ValueError, match="unknown translator arch 'cyclegan'"):
        plots.style_architecture("cyclegan")


def test_class_translation_grid_crops_each_class_at_its_largest_slice():
    label = np.zeros((3, 12, 12), dtype=np.int64)
    label[1, 2:4, 2:5] = 1  # class 1: largest on slice 1, rows 2-3, cols 2-4
    label[2, 6:11, 7:9] = 2  # class 2: slice 2 only
    source = np.arange(3 * 12 * 12, dtype=np.float32).reshape(3, 12, 12)
    fig = plots.class_translation_grid({"source": source, "translated": -source}, label,
                                       ["background", "one", "two", "absent"], margin=1)
    axes = np.asarray(fig.axes).reshape(2, 2)  # rows: volumes; columns: the classes present
    assert [ax.get_title() for ax in axes[0]] == ["one (slice 1)", "two (slice 2)"]
    assert axes[0, 0].get_ylabel() == "source" and axes[1, 0].get_ylabel() == "translated"
    np.testing.assert_array_equal(axes[0, 0].images[0].get_array(), source[1, 1:5, 1:6])
    np.testing.assert_array_equal(axes[1, 1].images[0].get_array(), -source[2, 5:12, 6:10])
    assert axes[0, 0].images[0].get_clim() == (-1.0, 1.0)  # one gray range: rows compare
    with pytest.raises(ValueError, match="translated: shape"):
        plots.class_translation_grid({"translated": source[:2]}, label, ["b", "one", "two"])


def test_translation_row_shows_one_slice_of_each_volume_and_outlines_the_shared_label():
    label = np.zeros((2, 8, 8), dtype=np.int64)
    label[1, 2:5, 2:5] = 1
    vols = {"source": np.random.default_rng(0).random((2, 8, 8)), "translated": np.ones((2, 8, 8)),
            "real target": np.zeros((2, 8, 8))}
    fig = plots.translation_row(vols, 1, label, other=["real target"])
    assert [ax.get_title() for ax in fig.axes] == list(vols)
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), vols["source"][1])
    outlined = [len(ax.collections) > 0 for ax in fig.axes]
    assert outlined == [True, True, False]  # another subject's slice is not outlined
    with pytest.raises(IndexError, match="slice 2 outside source"):
        plots.translation_row(vols, 2)


def test_image_grid_rows_and_columns(vol):
    image, _ = vol
    fig = plots.image_grid({"source": [image[0], image[1]], "target": [image[2]]})
    assert len(fig.axes) == 4
    assert [fig.axes[i].get_ylabel() for i in (0, 2)] == ["source", "target"]
    np.testing.assert_array_equal(fig.axes[2].images[0].get_array(), image[2])
    assert not fig.axes[3].images  # the short row leaves its cell empty


def test_bars_compared_groups():
    fig = plots.bars_compared({"before": {"a": 1.0, "b": 2.0}, "after": {"a": 0.5, "b": 0.1}},
                              "gap")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [1.0, 2.0, 0.5, 0.1]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["before", "after"]
    # a range over one series' bars: one vertical segment per class, at that series' bars
    fig = plots.bars_compared({"before": {"a": 1.0, "b": 2.0}, "ideal": {"a": 0.2, "b": 0.3}},
                              "gap", ranges={"ideal": ({"a": 0.1, "b": 0.2}, {"a": 0.4, "b": 0.5})})
    (segments,) = fig.axes[0].collections
    bars = fig.axes[0].patches[2:]  # the ideal series' bars
    assert [s[:, 1].tolist() for s in segments.get_segments()] == [[0.1, 0.4], [0.2, 0.5]]
    assert [s[0, 0] for s in segments.get_segments()] == pytest.approx(
        [b.get_x() + b.get_width() / 2 for b in bars])


def test_style_mix_shows_source_and_translation():
    import torch

    from glua_lib.style.models import StyleTransfer
    from glua_lib.style.train import StyleConfig

    model = StyleTransfer(StyleConfig(dim=4, n_down=1, n_res=1, mlp_dim=8, image_size=16)).eval()
    image = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    fig = plots.style_mix(model, image, torch.zeros(8), torch.ones(8), 0.25)
    assert fig.axes[0].get_ylabel() == "t = 0.25"
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), image)
    assert fig.axes[1].images[0].get_array().shape == (16, 16)


def test_class_histograms_wrap_after_three_panels_a_row():
    lab = [np.array([0, 1, 2, 3, 4])]
    img = [np.linspace(-1, 1, 5)]
    fig = plots.class_histograms(img, lab, img, lab, ("bg", "MYO", "LAC", "LVC", "AA"))
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["bg", "MYO", "LAC", "LVC", "AA"]
    rows = sorted({round(ax.get_position().y0, 3) for ax in shown}, reverse=True)
    assert len(rows) == 2 and len(fig.axes) == 6  # 3 + 2 panels, the sixth hidden
    assert fig.get_size_inches()[0] <= 9.5  # fits the book's column without shrinking much


def test_prediction_row_wraps_after_three_panels_with_the_legend_below_them(vol):
    image, label = vol
    preds = {m: label for m in ("none", "global", "local", "glua", "oracle")}
    fig = plots.prediction_row(image, label, preds, 0, ("bg", "A", "B"))
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown][1:] == list(preds) and len(shown) == 6
    assert len({round(ax.get_position().y0, 3) for ax in shown}) == 2  # two rows of three
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent().transformed(fig.transFigure.inverted())
    assert legend.y1 <= min(ax.get_position().y0 for ax in shown) + 1e-3  # off the images


def test_differences_chart_draws_each_interval_and_fills_the_findings():
    found = {"t a→b": {"glua − global": {"mean": 3.0, "low": 1.0, "high": 5.0, "finding": True},
                       "glua − local": {"mean": -1.0, "low": -4.0, "high": 2.0,
                                        "finding": False}}}
    ax = plots.differences_chart(found, title="t").axes[0]
    segments = [c.get_segments()[0] for c in ax.collections]
    assert [s[:, 0].tolist() for s in segments] == [[1.0, 5.0], [-4.0, 2.0]]
    assert [s[0, 1] for s in segments] == [1.0, 0.0]  # the first row on top
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert [d.get_xdata()[0] for d in dots] == [3.0, -1.0]
    assert [d.get_markerfacecolor() for d in dots] == ["black", "white"]
    labels = {t.get_position()[1]: t.get_text() for t in ax.get_yticklabels()}
    assert labels == {1.0: "t a→b: glua − global", 0.0: "t a→b: glua − local"}
    with pytest.raises(ValueError, match="no differences"):
        plots.differences_chart({})
