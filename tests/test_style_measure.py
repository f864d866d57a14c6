"""Chapter 2 measures on hand-made arrays."""
import math

import numpy as np
import pytest

from glua_lib.style.measure import appearance_gap, edge_alignment, gradient_magnitude


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
