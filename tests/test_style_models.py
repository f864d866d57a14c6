"""Chapter 2 networks and loss terms: shapes, behaviour, hand-computed values."""
import dataclasses

import pytest
import torch

from glua_lib.style import losses
from glua_lib.style.models import (AdaINResBlock, ContentDiscriminator, ContentEncoder, Decoder,
                                   Discriminators, DomainDiscriminator, DomainTranslator,
                                   MultiScaleDiscriminator, StyleEncoder, StyleTransfer, adain,
                                   make_critics, make_translator)
from glua_lib.style.train import StyleConfig
from glua_lib.style.translate import kmeans

TINY = StyleConfig(dim=4, n_res=1, mlp_dim=8, dis_dim=4, dis_layers=2, dis_scales=2,
                   image_size=16)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors gain nothing from threads, and spinning OpenMP threads stall badly when
    other processes share the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def x():
    return torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))


def test_module_output_shapes(x):
    enc = ContentEncoder(1, dim=4, n_down=2, n_res=2)
    c = enc(x)
    assert c.shape == (3, 16, 4, 4) and enc.out_dim == 16  # 4d channels at 1/4 resolution
    assert StyleEncoder(1, dim=4, style_dim=8)(x).shape == (3, 8)
    dec = Decoder(16, 1, style_dim=8, mlp_dim=8, n_res=2, n_up=2)
    y = dec(c, torch.randn(3, 8))
    assert y.shape == x.shape and y.abs().max() <= 1  # tanh: prepared range [-1, 1]
    outs = MultiScaleDiscriminator(1, dim=4, n_layers=2, n_scales=3)(x)
    assert [o.shape for o in outs] == [(3, 1, 4, 4), (3, 1, 2, 2), (3, 1, 1, 1)]
    assert ContentDiscriminator(16, dim=4)(c).shape == (3, 1, 4, 4)
    assert AdaINResBlock(16)(c, torch.zeros(3, 64)).shape == c.shape


def test_adain_sets_channel_statistics():
    h = torch.randn(2, 3, 8, 8) * 5 + 2
    gamma, beta = torch.tensor([[1.0, 0.0, -0.5]] * 2), torch.tensor([[0.0, 3.0, -1.0]] * 2)
    out = adain(h, gamma, beta)
    assert torch.allclose(out.mean((2, 3)), beta, atol=1e-4)
    assert torch.allclose(out.std((2, 3), unbiased=False), 1 + gamma, atol=1e-3)


def test_style_transfer_encode_decode_and_translate(x):
    torch.manual_seed(0)
    model = StyleTransfer(TINY)
    c, s = model.encode(x, "source")
    assert c.shape == (3, 16, 4, 4) and s.shape == (3, 8)
    assert model.decode(c, s, "target").shape == x.shape
    # one decoder per domain: the same codes render differently in the two domains
    assert not torch.allclose(model.decode(c, s, "source"), model.decode(c, s, "target"))
    zero = model.translate(x)  # style None: the prior's mean, deterministic
    assert torch.equal(zero, model.translate(x, style=torch.zeros(8)))
    r1 = model.translate(x, style="random", generator=torch.Generator().manual_seed(1))
    r2 = model.translate(x, style="random", generator=torch.Generator().manual_seed(1))
    assert torch.equal(r1, r2) and not torch.allclose(r1, zero)
    ref = model.translate(x, to="target", style=x[:1])  # one reference image for all
    code = model.style["target"](x[:1])
    assert torch.allclose(ref, model.decode(model.content(x), code.expand(3, -1), "target"))
    assert model.translate(x, to="source", style=x).shape == x.shape
    with pytest.raises(ValueError, match="domain must be"):
        model.encode(x, "ct")
    with pytest.raises(ValueError, match="style must be"):
        model.translate(x, style="mean")
    with pytest.raises(ValueError, match="2 styles for 3 images"):
        model.translate(x, style=torch.zeros(2, 8))
    with pytest.raises(ValueError, match="expected reference images"):
        model.translate(x, style=torch.zeros(3, 5))


def test_discriminators_hold_a_critic_per_domain_and_one_for_content(x):
    dis = Discriminators(TINY)
    assert set(dis.image) == {"source", "target"}
    assert dis.content(torch.randn(3, 16, 4, 4)).shape == (3, 1, 4, 4)


def test_lsgan_losses_hand_values():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5])
    # mean((1-1)², (0-1)²) + mean(0.5², 0.5²) = 0.5 + 0.25
    assert losses.lsgan_d_loss(real, fake).item() == pytest.approx(0.75)
    # multi-scale: summed over scales of per-scale means
    assert losses.lsgan_d_loss([real, torch.ones(1)], [fake, torch.zeros(1)]).item() \
        == pytest.approx(0.75)
    assert losses.lsgan_g_loss([torch.tensor([0.0, 1.0]), torch.tensor([2.0])]).item() \
        == pytest.approx(0.5 + 1.0)
    with pytest.raises(ValueError):
        losses.lsgan_d_loss([real, real], [fake])  # scales must pair up


def test_reconstruction_losses_hand_values():
    a = torch.zeros(1, 1, 2, 2)
    b = torch.tensor([[[[0.0, 2.0], [0.0, 0.0]]]])
    assert losses.image_recon_loss(b, a).item() == pytest.approx(0.5)  # L1 mean: 2 / 4
    assert losses.cycle_loss(a - 1, a).item() == pytest.approx(1.0)
    assert losses.content_recon_loss(torch.full((2, 3, 1, 1), 0.25), torch.zeros(2, 3, 1, 1)) \
        .item() == pytest.approx(0.25)
    assert losses.style_recon_loss(torch.tensor([[1.0, -3.0]]), torch.zeros(1, 2)).item() \
        == pytest.approx(2.0)


def test_content_adversarial_hand_values():
    one, zero, half = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), .5)
    assert losses.content_adv_d_loss(one, zero).item() == 0  # a perfect critic
    assert losses.content_adv_d_loss(zero, one).item() == pytest.approx(2.0)
    assert losses.content_adv_g_loss(half, half).item() == 0  # undecided: the encoder's goal
    assert losses.content_adv_g_loss(one, zero).item() == pytest.approx(0.5)


def test_style_prior_hand_values_and_gradient():
    assert losses.style_prior_loss(torch.tensor([[1.0], [-1.0]])).item() == 0  # μ 0, σ² 1
    assert losses.style_prior_loss(torch.tensor([[2.0], [2.0]])).item() == pytest.approx(5.0)
    assert losses.style_prior_loss(torch.tensor([[3.0, 0.0]])).item() \
        == pytest.approx(((9 + 1) + (0 + 1)) / 2)  # B = 1: σ² = 0
    s = torch.tensor([[2.0, 0.0], [2.0, 0.0]], requires_grad=True)
    losses.style_prior_loss(s).backward()
    # d/ds_i of mean_S(μ²) = 2μ/(B·S) = 1 on dim 0, (σ²−1)² adds 0 here: descent pulls the mean to 0
    assert torch.allclose(s.grad, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))


def test_mind_hand_values():
    # one row [0, 1]; right/left neighbour differences 1 at one pixel each, down/up 0 (borders
    # replicated); 3×3 box means: D_right = [2/3, 1/3], D_left = [1/3, 2/3], D_down = D_up = 0;
    # V = 1/4 at both pixels; exp(−D/V), divided by the max over the 4 neighbours (1)
    m = losses.mind(torch.tensor([[[[0.0, 1.0]]]]))
    e = torch.exp(torch.tensor([-8 / 3, -4 / 3]))
    expected = torch.tensor([[e[0], e[1]], [1, 1], [e[1], e[0]], [1, 1]]).reshape(1, 4, 1, 2)
    assert m.shape == (1, 4, 1, 2) and torch.allclose(m, expected)
    assert torch.equal(losses.mind(torch.full((2, 1, 3, 5), 0.7)), torch.ones(2, 4, 3, 5))  # flat


def test_mind_ignores_contrast_not_edges(x):
    # x: 3×1×16×16 standard normal, far above eps: the descriptor is the same under any
    # contrast change a·x + b, inversion included, but moves when an edge is added
    m = losses.mind(x)
    assert m.shape == (3, 4, 16, 16) and 0 <= m.min() and m.max() == 1
    assert torch.allclose(losses.mind(-x), m, atol=1e-6)
    assert torch.allclose(losses.mind(0.5 * x + 3), m, atol=1e-5)
    assert losses.structure_loss(-2 * x + 1, x).item() == pytest.approx(0, abs=1e-6)
    flat = torch.zeros(1, 1, 16, 16)
    patched = flat.clone()
    patched[..., 6:10, 6:10] = -1  # a dark patch inside a flat region: new edges
    assert losses.structure_loss(patched, flat).item() > 0.01


def test_structure_loss_gradient_reaches_the_translation():
    x = torch.zeros(1, 1, 8, 8)
    x[..., :, 4:] = 1  # one vertical edge
    y = torch.zeros(1, 1, 8, 8, requires_grad=True)  # a translation that lost the edge
    losses.structure_loss(y + 0.1 * torch.arange(8.0), x).backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


def test_class_appearance_loss_hand_values():
    # one 4×4 image: class 1 = left half (8 pixels), class 2 = right half
    y = torch.zeros(1, 4, 4, dtype=torch.long)
    y[..., :2], y[..., 2:] = 1, 2
    x = torch.where(y == 1, 0.2, -0.5)[:, None]  # B×1×H×W
    ref = torch.where(y == 1, 0.5, -0.5)[:, None]
    # class 1: every quantile 0.2 against 0.5, distance 0.3; class 2 equal: 0; mean 0.15
    assert losses.class_appearance_loss(x, y, ref, y, 3, min_pixels=8).item() \
        == pytest.approx(0.15)
    # reference pixels labelled -1 are ignored: class 1 keeps 2 of 8, too few, only class 2 counts
    y_ref = y.clone()
    y_ref[0, :3, :2] = -1
    assert losses.class_appearance_loss(x, y, ref, y_ref, 3, min_pixels=8).item() == 0
    # the gradient moves class 1 of x up towards the reference and leaves class 2 alone
    xg = x.clone().requires_grad_()
    losses.class_appearance_loss(xg, y, ref.requires_grad_(), y, 3, min_pixels=8).backward()
    assert (xg.grad[0, 0][y[0] == 1] < 0).all() and (xg.grad[0, 0][y[0] == 2] == 0).all()
    assert ref.grad is None
    # nothing to compare: 0, and backward still works
    loss = losses.class_appearance_loss(xg, y, ref, torch.full_like(y, -1), 3)
    loss.backward()
    assert loss.item() == 0


def test_kmeans_finds_blobs_largest_first():
    g = torch.Generator().manual_seed(0)
    big = torch.randn(12, 2, generator=g) * 0.05 + torch.tensor([5.0, 5.0])
    small = torch.randn(4, 2, generator=g) * 0.05 - 5
    centres = kmeans(torch.cat([small, big]), 2, seed=3)
    assert torch.allclose(centres[0], big.mean(0), atol=1e-5)
    assert torch.allclose(centres[1], small.mean(0), atol=1e-5)
    assert torch.allclose(kmeans(big, 1), big.mean(0, keepdim=True), atol=1e-5)
    with pytest.raises(ValueError, match="cannot make 5 clusters of 4"):
        kmeans(small, 5)


def test_domain_translator_is_one_encoder_and_decoder_told_the_domain(x):
    model = DomainTranslator(TINY)
    assert not hasattr(model, "style")  # no style encoders: the code is the label
    c, code = model.encode(x, "source")
    assert c.shape == (3, 16, 4, 4) and code.tolist() == [[1.0, 0.0]] * 3
    assert model.decode(c, None, "target").shape == x.shape
    y = model.translate(x, to="target")
    assert torch.equal(y, model.decode(c, model.code("target", x), "target"))
    assert torch.equal(model.translate(x, to="target", style=torch.tensor([0.0, 1.0])), y)
    # the label reaches both halves: another domain label, another content code and image
    assert not torch.allclose(model.encode(x, "target")[0], c)
    assert not torch.allclose(model.translate(x, to="source"), y)
    for bad in ("random", x):  # reference images and random styles belong to StyleTransfer
        with pytest.raises(ValueError, match="one style per domain"):
            model.translate(x, to="target", style=bad)
    assert isinstance(make_translator(TINY), StyleTransfer)
    domain = dataclasses.replace(TINY, arch="domain")
    assert isinstance(make_translator(domain), DomainTranslator)
    assert isinstance(make_critics(domain), DomainDiscriminator)


def test_domain_discriminator_scores_each_domain_on_its_own_map(x):
    dis = DomainDiscriminator(TINY)
    full = dis.critic(x)  # one map per domain at each of the 2 scales
    assert [o.shape for o in full] == [(3, 2, 4, 4), (3, 2, 2, 2)]
    for k, domain in enumerate(("source", "target")):
        assert all(torch.equal(a, b[:, k:k + 1]) for a, b in zip(dis(x, domain), full))
