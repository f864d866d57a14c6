"""The authors' segmenter (DeepLab-v2): shapes, output stride, the feature mask, the ASPP sum."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from glua_lib.seg.deeplab import ASPP_DILATIONS, DEMO_DEEPLAB, DeepLabV2
from glua_lib.seg.unet import count_parameters

TINY = dict(width=4, blocks=(1, 1, 1, 1, 1))


def tiny(**kw) -> DeepLabV2:
    torch.manual_seed(0)
    return DeepLabV2(**{"in_channels": 1, "n_classes": 3, **TINY, **kw})


def manual_logits(model: DeepLabV2, x: torch.Tensor, scale_f: float = 1.0) -> torch.Tensor:
    """The forward pass spelled out through the submodules, ``f`` multiplied by ``scale_f``."""
    f = model.layer4(model.layer3(model.layer2(model.layer1(model.stem(x)))))
    out = model.classifier(model.layer5(scale_f * f))
    return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("size", [(32, 32), (16, 40)])
def test_shapes_and_output_stride(norm, size):
    model = tiny(in_channels=3, n_classes=4, norm=norm)
    x = torch.randn(2, 3, *size)
    logits = model(x)
    assert logits.shape == (2, 4, *size)
    logits2, feats = model(x, return_features=True)
    assert torch.equal(logits, logits2)
    assert len(feats) == 1 == len(model.feature_channels)
    h, w = size[0] // 8, size[1] // 8
    assert feats[0].shape == (2, model.feature_channels[0], h, w)
    assert model.feature_channels == [32 * TINY["width"]]
    assert model.config == {"in_channels": 3, "n_classes": 4, "width": 4,
                            "blocks": [1, 1, 1, 1, 1], "norm": norm}


def test_layer_widths_follow_width():
    model = tiny(width=2, blocks=(1, 2, 1, 1, 2))
    outs = [layer[-1].conv3.out_channels for layer in
            (model.layer1, model.layer2, model.layer3, model.layer4, model.layer5)]
    assert outs == [8, 16, 32, 64, 64]
    assert [len(layer) for layer in (model.layer1, model.layer2, model.layer3, model.layer4,
                                     model.layer5)] == [1, 2, 1, 1, 2]
    assert model.layer3[0].conv2.dilation == (2, 2)
    assert model.layer4[0].conv2.dilation == model.layer5[0].conv2.dilation == (4, 4)


def test_zero_mask_and_none_mask_change_nothing():
    model = tiny().eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        plain = model(x)
        zero = model(x, feature_mask=lambda level, f: torch.zeros_like(f[:, :1]))
        none = model(x, feature_mask=lambda level, f: None)
    assert torch.equal(plain, zero)
    assert torch.equal(plain, none)


def test_mask_of_ones_doubles_the_feature_and_features_are_unmasked():
    model = tiny().eval()
    x = torch.randn(2, 1, 32, 32)
    calls = []

    def ones(level, f):
        calls.append((level, tuple(f.shape)))
        return torch.ones_like(f[:, :1])

    with torch.no_grad():
        logits, feats = model(x, return_features=True, feature_mask=ones)
        doubled = manual_logits(model, x, scale_f=2.0)
        plain, plain_feats = model(x, return_features=True)
    assert calls == [(0, (2, model.feature_channels[0], 4, 4))]
    torch.testing.assert_close(logits, doubled, rtol=0, atol=1e-6)
    torch.testing.assert_close(plain, manual_logits(model, x), rtol=0, atol=1e-6)
    assert not torch.allclose(logits, plain)
    assert torch.equal(feats[0], plain_feats[0])  # the returned feature is the one before the mask


def test_mask_changes_logits_and_gradient_reaches_its_source():
    model = tiny().eval()
    x = torch.randn(2, 1, 32, 32)
    s = torch.tensor(0.5, requires_grad=True)
    logits = model(x, feature_mask=lambda level, f: s * torch.ones_like(f[:, :1]))
    with torch.no_grad():
        assert not torch.allclose(logits, model(x))
    logits.square().sum().backward()
    assert s.grad is not None and s.grad.abs() > 0
    assert model.stem[0].weight.grad is not None


def test_mask_from_the_feature_itself_backpropagates_into_the_backbone():
    """GLUA's mask is computed from ``f`` by a discriminator: no detach anywhere."""
    model = tiny().train()
    head = torch.nn.Conv2d(model.feature_channels[0], 1, 1)
    x = torch.randn(2, 1, 32, 32)
    logits = model(x, feature_mask=lambda level, f: torch.tanh(head(f)).abs())
    logits.sum().backward()
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


def test_aspp_sums_all_four_branches():
    model = tiny()
    aspp = model.classifier
    assert [conv.dilation[0] for conv in aspp.branches] == list(ASPP_DILATIONS)
    assert [conv.padding[0] for conv in aspp.branches] == list(ASPP_DILATIONS)
    z = torch.randn(2, model.feature_channels[0], 4, 4)
    with torch.no_grad():
        total = sum(conv(z) for conv in aspp.branches)
        torch.testing.assert_close(aspp(z), total)
        # not just the first two (the authors' code returns inside its loop)
        first_two = aspp.branches[0](z) + aspp.branches[1](z)
        assert not torch.allclose(aspp(z), first_two)
    for conv in aspp.branches:
        assert conv.weight.std() < 0.02  # N(0, 0.01)


@pytest.mark.parametrize("kw, match", [
    (dict(width=0), "width"),
    (dict(n_classes=1), "n_classes"),
    (dict(blocks=(1, 1, 1, 1)), "blocks"),
    (dict(blocks=(1, 1, 0, 1, 1)), "blocks"),
    (dict(blocks=(1, 1, 1.5, 1, 1)), "blocks"),
    (dict(norm="group"), "unknown norm"),
])
def test_bad_sizes_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        DeepLabV2(**{**TINY, **kw})


@pytest.mark.parametrize("shape, match", [
    ((1, 32, 32), "B×C×H×W"),
    ((2, 3, 32, 32), "input channel"),
    ((2, 1, 32, 36), "multiple of the output stride 8"),
    ((2, 1, 8, 32), "at least 16"),
])
def test_bad_inputs_raise(shape, match):
    with pytest.raises(ValueError, match=match):
        tiny()(torch.randn(*shape))


def test_bad_mask_raises():
    model = tiny()
    x = torch.randn(2, 1, 32, 32)
    with pytest.raises(ValueError, match="feature_mask"):
        model(x, feature_mask=lambda level, f: torch.ones(2, 1, 8, 8))
    with pytest.raises(ValueError, match="feature_mask"):
        model(x, feature_mask=lambda level, f: 1.0)


def test_instance_norm_trains_with_batch_of_one():
    model = tiny(norm="instance").train()
    x = torch.randn(1, 1, 16, 16)
    y = torch.randint(0, 3, (1, 16, 16))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


def test_demo_size():
    model = DeepLabV2(**DEMO_DEEPLAB)
    assert 1_000_000 < count_parameters(model) < 1_300_000  # the docstring says 1.14 M
    assert model.feature_channels == [512]
