"""Chapter 2 measures on hand-made arrays."""
import math

import numpy as np
import pytest

from glua_lib.style.measure import (appearance_floor, appearance_gap, class_mean_spread,
                                    class_views, edge_alignment, gradient_magnitude, ideal_gap,
                                    translation_report)


def test_appearance_gap_per_class_hand_values():
    img_a = np.array([[0.0, 0.0, 1.0, 1.0]])
    lab = np.array([[0, 0, 1, 1]])
    img_b = np.array([[0.0, 0.0, 3.0, 3.0]])
    gap = appearance_gap(img_a, lab, img_b, lab, ["background", "fg", "absent"])
    assert gap["background"] == 0.0
    assert gap["fg"] == pytest.approx(2.0)  # W1 between two point masses at 1 and 3
    assert math.isnan(gap["absent"])
    # sequences of volumes are pooled; W1 of a shifted distribution is the shift
    rng = np.random.default_rng(0)
    vols = [rng.normal(size=(2, 4, 4)) for _ in range(3)]
    labs = [np.ones((2, 4, 4), np.uint8) for _ in range(3)]
    shifted = appearance_gap(vols, labs, [v + 0.5 for v in vols], labs, ["bg", "fg"])
    assert shifted["fg"] == pytest.approx(0.5) and math.isnan(shifted["bg"])


def test_appearance_gap_subsamples_and_checks_shapes():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=5000), rng.normal(1.0, size=5000)
    lab = np.ones(5000, np.uint8)
    full = appearance_gap(a, lab, b, lab, ["bg", "fg"], max_samples=None)["fg"]
    sub = appearance_gap(a, lab, b, lab, ["bg", "fg"], max_samples=1000)["fg"]
    assert full == pytest.approx(1.0, abs=0.1) and sub == pytest.approx(full, abs=0.15)
    with pytest.raises(ValueError, match="label shape"):
        appearance_gap(a, lab[:10], b, lab, ["bg", "fg"])


def _square(shift=0):
    img = np.zeros((16, 16))
    img[4 + shift:10 + shift, 5:11] = 1.0
    return img


def test_edge_alignment_ignores_contrast_but_not_geometry():
    sq = _square()
    assert gradient_magnitude(sq)[0, 0] == 0 and gradient_magnitude(sq).max() > 0
    assert edge_alignment(sq, -sq) == pytest.approx(1.0)  # inverted contrast: same content
    assert edge_alignment(sq, 3 * sq + 2) == pytest.approx(1.0)
    moved = edge_alignment(sq, _square(shift=4))
    noise = edge_alignment(sq, np.random.default_rng(0).normal(size=(16, 16)))
    assert moved < 0.5 and abs(noise) < 0.3
    # volumes: mean over slices; flat slices are skipped, all flat gives nan
    vol = np.stack([sq, np.zeros((16, 16))])
    assert edge_alignment([vol], [-vol]) == pytest.approx(1.0)
    assert math.isnan(edge_alignment(np.zeros((16, 16)), sq))
    with pytest.raises(ValueError, match="expected equal"):
        edge_alignment(sq, sq[:8])


def test_style_walk_interpolates_between_two_styles():
    import torch

    from glua_lib.style.models import StyleTransfer
    from glua_lib.style.train import StyleConfig
    from glua_lib.style.translate import style_walk

    cfg = StyleConfig(dim=4, n_down=1, n_res=1, mlp_dim=8, image_size=16)
    torch.manual_seed(0)
    model = StyleTransfer(cfg).eval()
    image = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    a, b = torch.zeros(8), torch.ones(8) * 2
    walk = style_walk(model, image, a, b, n=3)
    assert walk.shape == (3, 16, 16) and walk.dtype == np.float32
    ends = model.translate(torch.from_numpy(image)[None, None].repeat(2, 1, 1, 1), "target",
                           style=torch.stack([a, b]))[:, 0].detach().numpy()
    np.testing.assert_allclose(walk[[0, 2]], ends, atol=1e-5)
    assert not np.allclose(walk[0], walk[2])  # the style code changes the rendering


def test_appearance_floor_is_the_leave_one_out_gap_between_subjects():
    lab = np.array([[0, 1, 1]])
    imgs = [np.array([[0.0, 1.0, 1.0]]), np.array([[0.0, 2.0, 2.0]]), np.array([[0.0, 4.0, 4.0]])]
    floor = appearance_floor(imgs, [lab] * 3, ["bg", "fg"])
    # fg: subject 1 vs {2, 4}: W1 = (1 + 3) / 2 = 2; 2 vs {1, 4}: 1.5; 4 vs {1, 2}: 2.5
    assert floor["fg"] == pytest.approx((2 + 1.5 + 2.5) / 3)
    assert floor["bg"] == 0.0
    with pytest.raises(ValueError, match=">= 2 images"):
        appearance_floor(imgs[:1], [lab], ["bg", "fg"])


def test_class_mean_spread_within_groups_and_collapse_gives_zero():
    lab = np.array([[0, 1, 1, 2]])
    a = np.array([[0.0, 1.0, 3.0, 5.0]])  # class-1 mean 2
    b = np.array([[0.0, 5.0, 7.0, 5.0]])  # class-1 mean 6
    spread = class_mean_spread([a, b], [lab, lab], ["bg", "c1", "c2", "absent"])
    assert spread["bg"] == 0.0 and spread["c2"] == 0.0
    assert spread["c1"] == pytest.approx(2.0)  # std of {2, 6}
    assert math.isnan(spread["absent"])
    # grouped: spread inside each group (two styles of one source), averaged over groups
    grouped = class_mean_spread([a, a, a, b], [lab] * 4, ["bg", "c1", "c2"],
                                groups=["s1", "s1", "s2", "s2"])
    assert grouped["c1"] == pytest.approx((0.0 + 2.0) / 2)
    # one image per group: no spread can be measured
    assert math.isnan(class_mean_spread([a, b], [lab, lab], ["bg", "c1"], groups=[1, 2])["c1"])
    with pytest.raises(ValueError, match="group keys"):
        class_mean_spread([a, b], [lab, lab], ["bg"], groups=[1])


LAB = np.array([[[0, 1, 1, 2]]])


def _volume(subject, *values):
    from types import SimpleNamespace

    return SimpleNamespace(subject=subject, image=np.array([[list(values)]]), label=LAB)


# one source volume "a", two target subjects, and two styles of "a": class 1 moved halfway
# towards the target, class 2 made worse
SRC = [_volume("a", 0.0, 0.0, 0.0, 1.0)]
TGT = [_volume("t1", 0.0, 1.0, 1.0, 1.0), _volume("t2", 0.0, 1.5, 1.5, 1.0)]
TRANS = [_volume("a_style0", 0.0, 0.5, 0.5, 0.2), _volume("a_style1", 0.0, 0.7, 0.7, 0.2)]


def test_translation_report_on_hand_made_volumes():
    src, tgt, trans = SRC, TGT, TRANS
    r = translation_report(src, tgt, trans, ["bg", "c1", "c2"])
    assert r["before"] == {"c1": pytest.approx(1.25), "c2": 0.0}  # |0 − {1, 1.5}|
    assert r["after"]["c1"] == pytest.approx(0.65)  # |{0.5, 0.7} − {1, 1.5}|: (0.5+1+0.3+0.8)/4
    assert r["after"]["c2"] == pytest.approx(0.8) and r["shrank"] == ["c1"]
    assert r["floor"]["c1"] == pytest.approx(0.5) and r["floor"]["c2"] == 0.0
    assert r["between_styles"]["c1"] == pytest.approx(0.1)  # std of {0.5, 0.7}
    assert r["between_subjects"]["c1"] == pytest.approx(0.25)  # std of {1, 1.5}
    assert r["style_ratio"] == pytest.approx(0.4)  # c2 has no spread between subjects: skipped
    # each translation against its own source: edges |∇| [0, 0, g, g] vs [a, a, b, b] with a > b
    assert r["edge_alignment"] == pytest.approx(-1.0)
    assert r["edge_alignment"] == edge_alignment([src[0].image] * 2, [t.image for t in trans])
    with pytest.raises(ValueError, match="unknown source subjects"):
        translation_report(src, tgt, [_volume("b_style0", 0.0, 0.5, 0.5, 0.2)],
                           ["bg", "c1", "c2"])


def test_ideal_gap_and_the_reports_ideal_verdict_on_hand_made_volumes():
    src, tgt, trans = SRC, TGT, TRANS

    def ideal_set(c1, c2):
        return [_volume("a_style0", 0.0, c1, c1, c2)]

    # c1 against the targets' {1, 1, 1.5, 1.5}: at 1 or 1.25 the gap is 0.25, at 2 it is 0.75;
    # c2 against {1, 1}: at 1, 0 and 0.9 the gaps are 0, 1 and 0.1
    sets = (ideal_set(c1, c2) for c1, c2 in ((1.0, 1.0), (1.25, 0.0), (2.0, 0.9)))
    g = ideal_gap(tgt, sets, ["bg", "c1", "c2"], before={"bg": 0.0, "c1": 1.25, "c2": 0.0})
    assert g["n_sets"] == 3
    assert g["median"]["c1"] == pytest.approx(0.25) and g["median"]["c2"] == pytest.approx(0.1)
    # numpy's linear quantiles of 3 values: 5 % at position 0.1, 95 % at position 1.9
    assert g["low"]["c1"] == pytest.approx(0.25) and g["high"]["c1"] == pytest.approx(0.7)
    assert g["low"]["c2"] == pytest.approx(0.01) and g["high"]["c2"] == pytest.approx(0.91)
    # every ideal set shrinks c1 (before 1.25); none can shrink c2, whose before is 0
    assert g["shrinks"] == {"bg": 0.0, "c1": 1.0, "c2": 0.0}
    assert "shrinks" not in ideal_gap(tgt, [ideal_set(1.0, 1.0)], ["bg", "c1", "c2"])
    with pytest.raises(ValueError, match="at least one set"):
        ideal_gap(tgt, [], ["bg", "c1", "c2"])

    r = translation_report(src, tgt, trans, ["bg", "c1", "c2"],
                           ideal_sets=[ideal_set(c1, c2) for c1, c2 in
                                       ((1.0, 1.0), (1.25, 0.0), (2.0, 0.9))])
    assert r["ideal"] == {"c1": pytest.approx(0.25), "c2": pytest.approx(0.1)}
    assert r["ideal_high"]["c1"] == pytest.approx(0.7) and r["ideal_sets"] == 3
    assert r["ideal_shrinks"] == {"c1": 1.0, "c2": 0.0}
    # after: c1 0.65 (shrank, and within the ideal range up to 0.7); c2 0.8 (grew from 0, but
    # within the ideal range up to 0.91)
    assert r["shrank"] == ["c1"] and r["within_ideal"] == ["c1", "c2"]
    # each ideal set's edge alignment with its source "a" (edges on the right of the row): the
    # first and third sets have theirs on the left (-1); the second, [0, 1.25, 1.25, 0], has
    # edges of one strength everywhere, a flat map that is skipped; the median is -1
    assert r["ideal_edge_alignment"] == pytest.approx(-1.0)
    assert "ideal" not in translation_report(src, tgt, trans, ["bg", "c1", "c2"])


class _StyleAsIntensity(__import__("torch").nn.Module):
    """A stand-in model whose translation is a flat image of the style code's first number."""

    def __init__(self):
        import torch
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def translate(self, x, to, style):
        return x * 0 + style[:, :1, None, None]


def test_style_effect_is_the_mean_pairwise_difference_of_renderings():
    import torch

    from glua_lib.style.translate import COLLAPSE_RATIO, style_effect

    model, image = _StyleAsIntensity(), np.zeros((4, 4), np.float32)
    codes = torch.tensor([[0.0, 9.0], [0.5, 9.0], [1.0, 9.0]])
    e = style_effect(model, image, codes, seed=5)
    assert e.styles == pytest.approx((0.5 + 1.0 + 0.5) / 3)  # |0−.5|, |0−1|, |.5−1|
    z = e.random_codes[:, 0]
    assert e.random_codes.shape == (3, 2)
    drawn = torch.randn(3, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(e.random_codes, drawn)
    assert e.random == pytest.approx(float((z[0] - z[1]).abs() + (z[0] - z[2]).abs()
                                           + (z[1] - z[2]).abs()) / 3, rel=1e-6)
    assert e.ratio == pytest.approx(e.styles / e.random) and not e.collapsed
    a, b = e.walk_ends(codes)
    assert torch.equal(a, codes[0]) and torch.equal(b, codes[1])
    # one style three times: nothing differs, so the walk goes between two prior draws instead
    same = style_effect(model, image, codes[[1, 1, 1]], seed=5)
    assert same.styles == 0 and same.ratio == 0 < COLLAPSE_RATIO and same.collapsed
    a, b = same.walk_ends(codes[[1, 1, 1]])
    assert torch.equal(a, same.random_codes[0]) and torch.equal(b, same.random_codes[1])
    with pytest.raises(ValueError, match="K >= 2 style codes"):
        style_effect(model, image, codes[:1])
    with pytest.raises(ValueError, match="one H×W slice"):
        style_effect(model, np.zeros((2, 4, 4), np.float32), codes)


def test_style_effect_of_a_decoder_that_ignores_the_style_counts_as_collapsed():
    import torch

    from glua_lib.style.translate import style_effect

    class Flat(_StyleAsIntensity):
        def translate(self, x, to, style):
            return x * 0

    e = style_effect(Flat(), np.zeros((4, 4), np.float32), torch.eye(3))
    assert e.styles == e.random == 0 and np.isnan(e.ratio) and e.collapsed


def test_volume_style_effect_renders_the_busiest_slice_with_draws_seeded_seed_plus_one():
    import torch

    from glua_lib.data import Volume
    from glua_lib.style.translate import style_effect, volume_style_effect

    class StyleTimesImage(_StyleAsIntensity):
        def translate(self, x, to, style):
            return x * style[:, :1, None, None]

    image = np.stack([np.full((4, 4), v, np.float32) for v in (1.0, 2.0, 3.0)])
    label = np.zeros((3, 4, 4), np.uint8)
    label[0, :1], label[2, :2] = 1, 2  # slice 2 has the most foreground (8 pixels against 4)
    vol = Volume(image, label, (1.0, 1.0, 1.0), "mr", "cardiac", "s")
    codes = torch.tensor([[0.0], [1.0]])
    e = volume_style_effect(StyleTimesImage(), vol, codes, seed=4)
    assert e.styles == pytest.approx(3.0)  # renders 0·3 and 1·3 of slice 2
    drawn = torch.randn(2, 1, generator=torch.Generator().manual_seed(5))  # seed + 1
    assert torch.equal(e.random_codes, drawn)
    direct = style_effect(StyleTimesImage(), image[2], codes, seed=5)
    assert (e.styles, e.random) == (direct.styles, direct.random)
    # no foreground anywhere: the middle slice (value 2)
    blank = Volume(image, np.zeros_like(label), (1.0, 1.0, 1.0), "mr", "cardiac", "s")
    assert volume_style_effect(StyleTimesImage(), blank, codes).styles == pytest.approx(2.0)


def test_class_views_pick_each_class_largest_slice_and_its_box_with_a_margin():
    label = np.zeros((3, 10, 10), dtype=np.int64)
    label[0, 4, 4] = 2  # one voxel of class 2 on slice 0 ...
    label[2, 0:2, 7:10] = 2  # ... six on slice 2, at the top right corner
    label[1, 3:6, 2:4] = 1
    views = class_views(label, n_classes=4, margin=2)
    assert set(views) == {1, 2}  # class 3 is absent
    assert views[1] == (1, slice(1, 8), slice(0, 6))
    assert views[2] == (2, slice(0, 4), slice(5, 10))  # clipped to the image
    assert class_views(label, 4, margin=0)[1] == (1, slice(3, 6), slice(2, 4))
    with pytest.raises(ValueError, match="D×H×W"):
        class_views(label[0], 4)
    with pytest.raises(ValueError, match="margin"):
        class_views(label, 4, margin=-1)
