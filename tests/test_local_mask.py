"""Local feature mask, masked adversarial loss, attention variant, discriminator, AUC: by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glua_lib.local import (FeatureDiscriminator, attend, class_mean_mask, discriminator_loss,
                            gap_score, local_mask, mask_gap_auc, masked_adversarial_loss,
                            roc_auc)
from glua_lib.local.measure import high_gap, pool_to

LN3 = math.log(3.0)


def logits(*rows) -> torch.Tensor:
    """A 1×1×h×w tensor from rows of numbers."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


# ---------------------------------------------------------------------------------------------
# discriminator


def test_discriminator_keeps_each_levels_resolution():
    disc = FeatureDiscriminator([4, 8], width=6)
    out = disc([torch.randn(3, 4, 8, 8), torch.randn(3, 8, 4, 4)])
    assert [tuple(o.shape) for o in out] == [(3, 1, 8, 8), (3, 1, 4, 4)]
    single = FeatureDiscriminator(5, width=3)
    assert single(torch.randn(2, 5, 6, 6)).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="head 1 expects B×8×h×w"):
        disc([torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)])
    with pytest.raises(ValueError, match="expected 2 feature maps"):
        disc([torch.randn(1, 4, 8, 8)])


def test_discriminator_output_is_local():
    """A change at one feature location only moves outputs within the 5×5 receptive field."""
    torch.manual_seed(0)
    disc = FeatureDiscriminator(2, width=4)
    f = torch.randn(1, 2, 12, 12)
    g = f.clone()
    g[0, :, 6, 6] += 5.0
    diff = (disc(f) - disc(g)).abs()[0, 0] > 0
    rows, cols = torch.nonzero(diff, as_tuple=True)
    assert diff[6, 6] and (rows.min(), rows.max(), cols.min(), cols.max()) == (4, 8, 4, 8)


# ---------------------------------------------------------------------------------------------
# gap score and mask


def test_gap_score_by_hand():
    d = logits([0.0, LN3], [-LN3, 30.0])  # P(source) = 0.5, 0.75, 0.25, ~1
    assert torch.allclose(gap_score(d), logits([0.0, 0.5], [0.5, 1.0]), atol=1e-6)
    adv = gap_score(d, score="adv")  # −log P(source)
    assert torch.allclose(adv, logits([math.log(2), math.log(4 / 3)], [math.log(4), 0.0]),
                          atol=1e-6)
    ls = gap_score(logits([0.25, 1.5]), gan="lsgan")  # probability = output clamped to [0, 1]
    assert torch.allclose(ls, logits([0.5, 1.0]))
    with pytest.raises(ValueError, match="B×1×h×w"):
        gap_score(torch.zeros(1, 2, 3, 3))


def test_mask_peaks_where_the_discriminator_separates_best():
    d = torch.full((2, 1, 4, 4), 0.1)
    d[0, 0, 1, 2] = 8.0  # image 0: confidently source at (1, 2)
    d[1, 0, 3, 0] = -8.0  # image 1: confidently target at (3, 0)
    m = local_mask(gap_score(d))
    assert m.shape == (2, 1, 4, 4)
    assert divmod(int(m[0, 0].argmax()), 4) == (1, 2) and divmod(int(m[1, 0].argmax()), 4) == (3, 0)
    assert torch.allclose(m.flatten(1).max(1).values, torch.ones(2))  # per-image max is 1
    assert float(m[0].min()) == pytest.approx(math.tanh(0.05) / math.tanh(4.0), rel=1e-4)


def test_mask_normalisations_and_temperature_by_hand():
    g = logits([0.0, 0.5], [1.0, 0.25])
    assert torch.allclose(local_mask(g), g, atol=1e-5)  # max is 1 already
    assert torch.allclose(local_mask(g, temperature=0.5), g ** 2, atol=1e-5)
    assert torch.allclose(local_mask(2 * g), g, atol=1e-5)  # scale-free
    soft = local_mask(g, norm="softmax", temperature=0.5)
    assert torch.allclose(soft, torch.exp((g - 1.0) / 0.5), atol=1e-6)
    # a discriminator at chance everywhere gives the uniform mask
    assert torch.equal(local_mask(torch.zeros(1, 1, 3, 3)), torch.ones(1, 1, 3, 3))


@pytest.mark.parametrize("norm", ["max", "softmax"])
def test_lower_temperature_is_sharper(norm):
    torch.manual_seed(1)
    g = torch.rand(2, 1, 6, 6)

    def entropy(m):  # of the mask as a distribution over each image's locations
        p = m.flatten(1) / m.flatten(1).sum(1, keepdim=True)
        return float(-(p * p.clamp_min(1e-12).log()).sum(1).mean())

    ents = [entropy(local_mask(g, norm, temperature=t)) for t in (100.0, 1.0, 0.3, 0.05)]
    assert all(a > b for a, b in zip(ents, ents[1:]))
    assert ents[0] == pytest.approx(math.log(36), abs=0.01)  # τ → ∞: uniform
    assert local_mask(g, norm, temperature=1e-3).flatten(1).gt(1e-3).sum(1).tolist() == [1, 1]


def test_top_k_keeps_exactly_k_locations():
    torch.manual_seed(2)
    g = torch.rand(3, 1, 8, 8)
    m = local_mask(g, top_k=0.25)
    assert (m > 0).flatten(1).sum(1).tolist() == [16, 16, 16]
    full = local_mask(g)
    for b in range(3):  # the kept ones are the 16 largest, with their values
        kept = torch.nonzero(m[b].flatten() > 0).flatten()
        assert set(kept.tolist()) == set(full[b].flatten().topk(16).indices.tolist())
        assert torch.equal(m[b].flatten()[kept], full[b].flatten()[kept])
    ties = local_mask(torch.full((2, 1, 5, 5), 0.3), top_k=0.2)  # all equal: still exactly 5
    assert (ties > 0).flatten(1).sum(1).tolist() == [5, 5]
    assert (local_mask(g, top_k=0.001) > 0).flatten(1).sum(1).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="top_k"):
        local_mask(g, top_k=0.0)


def test_no_gradient_flows_through_the_mask():
    d = logits([0.5, -2.0], [3.0, 0.0]).requires_grad_(True)
    m = local_mask(gap_score(d))
    assert not m.requires_grad
    masked_adversarial_loss(d, m).backward()
    # d/dℓ of Σ M·softplus(−ℓ) / Σ M with M constant: M·(σ(ℓ) − 1) / Σ M
    with torch.no_grad():
        expected = m * (torch.sigmoid(d) - 1) / m.sum()
    assert torch.allclose(d.grad, expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# losses


def test_masked_loss_by_hand_and_uniform_mask_is_unmasked():
    d = logits([0.0, LN3])  # BCE to "source": ln 2, ln 4/3
    m = logits([1.0, 0.5])
    by_hand = (math.log(2) + 0.5 * math.log(4 / 3)) / 1.5
    assert masked_adversarial_loss(d, m).item() == pytest.approx(by_hand, rel=1e-6)
    ls = masked_adversarial_loss(logits([0.0, 3.0]), m, gan="lsgan")  # (ℓ−1)²: 1, 4
    assert ls.item() == pytest.approx((1 + 0.5 * 4) / 1.5, rel=1e-6)
    torch.manual_seed(3)
    x = torch.randn(4, 1, 5, 5)
    unmasked = masked_adversarial_loss(x)
    assert unmasked.item() == pytest.approx(torch.nn.functional.softplus(-x).mean().item())
    for c in (1.0, 0.3):
        assert masked_adversarial_loss(x, torch.full_like(x, c)).item() == \
            pytest.approx(unmasked.item(), rel=1e-6)
    # a mask on one location: the loss is that location's
    one = torch.zeros_like(x)
    one[:, :, 2, 3] = 1
    assert masked_adversarial_loss(x, one).item() == \
        pytest.approx(torch.nn.functional.softplus(-x[:, 0, 2, 3]).mean().item(), rel=1e-6)


def test_discriminator_loss_by_hand():
    s, t = logits([LN3]), logits([-LN3])  # right on both: −log 0.75 each
    assert discriminator_loss(s, t).item() == pytest.approx(-math.log(0.75), rel=1e-6)
    assert discriminator_loss(logits([1.0]), logits([0.5]), gan="lsgan").item() == \
        pytest.approx(0.5 * (0 + 0.25))


def test_attention_variant_is_f_where_mask_0_and_2f_where_mask_1():
    f = torch.randn(2, 3, 4, 4)
    m = torch.zeros(2, 1, 2, 2)
    m[:, :, 0, 1] = 1.0  # the top-right 2×2 block of f after nearest upsampling
    m[:, :, 1, 0] = 0.5
    out = attend(f, m)
    assert out.shape == f.shape
    assert torch.equal(out[..., 0:2, 2:4], 2 * f[..., 0:2, 2:4])
    assert torch.equal(out[..., 0:2, 0:2], f[..., 0:2, 0:2])
    assert torch.allclose(out[..., 2:4, 0:2], 1.5 * f[..., 2:4, 0:2])
    same = attend(f, torch.ones(2, 1, 4, 4))
    assert torch.equal(same, 2 * f)


# ---------------------------------------------------------------------------------------------
# AUC and mask vs gap


def test_roc_auc_hand_cases():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75  # 3 of 4 pairs ordered
    assert roc_auc([0.5, 0.5, 0.5], [0, 1, 1]) == 0.5  # ties count ½
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))
    rng = np.random.default_rng(0)
    assert abs(roc_auc(rng.random(4000), rng.random(4000) < 0.3) - 0.5) < 0.03
    # tied integer scores: equal to the pairwise definition
    s, y = rng.integers(0, 4, 60), rng.random(60) < 0.4
    pairs = [(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]]
    assert roc_auc(s, y) == pytest.approx(np.mean(pairs))


def test_pool_and_high_gap():
    g = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert np.array_equal(pool_to(g, (2, 2))[0], [[2.5, 4.5], [10.5, 12.5]])
    assert high_gap(np.array([0, 0, 1, 2, 3.0]), quantile=0.6).tolist() == [0, 0, 0, 1, 1]
    assert high_gap(np.array([0, 0, 3, 3, 3.0]), quantile=0.8).tolist() == [0, 0, 1, 1, 1]
    assert high_gap(np.array([0, 1, 2.0]), threshold=0.5).tolist() == [0, 1, 1]


def test_mask_gap_auc_at_feature_and_image_resolution():
    gap = np.zeros((2, 8, 8), np.float32)
    gap[:, :4, :4] = 2.0  # the top-left quarter has the large gap
    gap[1] += 0.1
    good = torch.tensor([[[[0.9, 0.2], [0.1, 0.3]]]]).repeat(2, 1, 1, 1)
    assert mask_gap_auc(good, gap, quantile=0.5) == 1.0
    assert mask_gap_auc(1 - good, gap, quantile=0.5) == 0.0
    assert mask_gap_auc(good, gap, threshold=1.0, at="image") == 1.0
    flat = torch.ones(2, 1, 2, 2)
    assert mask_gap_auc(flat, gap, threshold=1.0) == 0.5
    with pytest.raises(ValueError, match="2 masks but 1 gap maps"):
        mask_gap_auc(good, gap[:1])


def test_class_mean_mask():
    m = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    label = np.zeros((1, 4, 4), np.uint8)
    label[0, :2, :2] = 1
    label[0, 2:, :] = 2
    means = class_mean_mask(m, label, 4)
    assert means[:3].tolist() == [0.0, 1.0, 0.5] and math.isnan(means[3])


def test_auc_interval_verdicts():
    import numpy as np

    from glua_lib.local import mask_gap_auc_interval

    gap = np.zeros((6, 4, 4), np.float32)
    gap[:, :2] = 1.0  # the top half of every slice is the high-gap region
    perfect = gap[:, None].copy()
    auc, low, high, verdict = mask_gap_auc_interval(perfect, gap, quantile=0.5, n_boot=50)
    assert auc == 1.0 and low == high == 1.0 and verdict == "above chance"
    auc, low, high, verdict = mask_gap_auc_interval(1 - perfect, gap, quantile=0.5, n_boot=50)
    assert auc == 0.0 and verdict == "below chance"
    gap = np.zeros((20, 8, 8), np.float32)
    gap[:, :4] = 1.0
    noise = np.random.default_rng(0).random((20, 1, 8, 8))  # unrelated to the gap
    auc, low, high, verdict = mask_gap_auc_interval(noise, gap, quantile=0.5, n_boot=100)
    assert low < auc < high and low < 0.5 < high
    assert verdict == "not distinguishable from chance"


def test_quantile_match_maps_one_histogram_onto_another():
    from glua_lib.data.prepared import Volume
    from glua_lib.local.measure import quantile_match

    def vol(values, subject):
        image = np.asarray(values, np.float32).reshape(1, 1, -1)
        return Volume(image, np.zeros(image.shape, np.uint8), (1.0, 1.0, 1.0), "ct", "cardiac",
                      subject)

    ref = [vol([0.0, 10.0, 20.0, 30.0], "r")]
    out = quantile_match([vol([0.0, 1.0], "a"), vol([2.0, 3.0], "b")], ref, n_quantiles=5)
    # pooled 0, 1, 2, 3 onto 0, 10, 20, 30: the one monotone map is x · 10
    assert [v.image.ravel().tolist() for v in out] == [[0.0, 10.0], [20.0, 30.0]]
    assert [v.subject for v in out] == ["a", "b"] and out[0].image.dtype == np.float32


def test_mask_by_class_compares_each_mask_with_the_true_gap():
    from glua_lib.local.measure import mask_by_class
    label = np.array([[[0, 1], [2, 3]]])  # one 2×2 slice, one pixel a class
    gap = np.array([[[0.0, 0.9], [0.3, 0.1]]])
    right = np.array([[[[0.0, 1.0], [0.4, 0.2]]]])  # B×1×h×w at the label's size
    wrong = np.array([[[[0.0, 0.1], [0.8, 0.2]]]])
    r = mask_by_class(gap, label, {"right": right, "wrong": wrong}, ["bg", "A", "B", "C"])
    assert r.gap == pytest.approx({"bg": 0.0, "A": 0.9, "B": 0.3, "C": 0.1})
    assert r.top_gap == "A" and r.gap_ratio == pytest.approx(0.9 / 0.2)
    assert r.top_mask == {"right": "A", "wrong": "B"}
    assert r.mask_ratio == pytest.approx({"right": 1.0 / 0.3, "wrong": 0.1 / 0.5})
    assert "| right | A | the same class | 3.33 |" in r.markdown()
    assert "| wrong | B | a different class | 0.20 |" in r.markdown()
    with pytest.raises(ValueError, match="two foreground classes"):
        mask_by_class(gap, np.zeros_like(label), {"m": right}, ["bg", "A"])
