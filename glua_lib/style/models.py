"""The global-alignment networks: a MUNIT-like disentangled style-transfer model (DAR-UNet style).

An image is split into a **content code** (spatial, shared between modalities: *what* is where)
and a **style code** (a short vector: *how* the modality renders it). Translation keeps the content
of a source image and decodes it with a target style::

    x_s --ContentEncoder--> c (B×4d×H/4×W/4)   --+
                                                  +--> Decoder["target"](c, s_t) --> x_s→t
    x_t --StyleEncoder["target"]--> s_t (B×S)  --+

:class:`DomainTranslator` is the other design, the one GLUA's authors built: one encoder and one
decoder told the domain by a label (``StyleConfig.arch="domain"``).

Design of :class:`StyleTransfer` (see the chapter): one **shared** content encoder, a style
encoder **per domain** and a decoder **per domain** (as MUNIT). A shared decoder conditioned by
style alone cannot know which modality to draw from a prior sample, since both domains' style
codes are pushed towards the same N(0, I); separate decoders make ``decode(content, style,
domain)`` unambiguous. (:class:`DomainTranslator` avoids the question: its code is the label.) Shapes below use
``B`` batch, ``C`` image channels, ``d`` the base width (``StyleConfig.dim``), ``S`` the style size.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

DOMAINS = ("source", "target")
CHANNELS = 1  # image channels C: prepared slices are single-channel


def _conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv2d:
    """A k×k convolution with reflection padding that keeps H×W (stride 1) or divides it."""
    return nn.Conv2d(c_in, c_out, k, stride, padding=(k - 1) // 2 if k % 2 else 1,
                     padding_mode="reflect")


def _norm_act(c: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(c), nn.ReLU(inplace=True)]


class ResBlock(nn.Module):
    """conv3-IN-ReLU-conv3-IN with a skip: B×c×h×w -> B×c×h×w."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(_conv(c, c, 3), *_norm_act(c), _conv(c, c, 3),
                                  nn.InstanceNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ContentEncoder(nn.Module):
    """Shared encoder: B×C×H×W -> content code B×(d·2^n_down)×(H/2^n_down)×(W/2^n_down).

    conv7 -> ``n_down`` stride-2 conv4 (doubling the width) -> ``n_res`` InstanceNorm ResBlocks.
    With the default ``n_down=2`` the code is at 1/4 resolution with ``4d`` channels.
    """

    def __init__(self, in_ch: int, dim: int, n_down: int = 2, n_res: int = 4):
        super().__init__()
        layers = [_conv(in_ch, dim, 7), *_norm_act(dim)]
        for _ in range(n_down):
            layers += [_conv(dim, 2 * dim, 4, 2), *_norm_act(2 * dim)]
            dim *= 2
        layers += [ResBlock(dim) for _ in range(n_res)]
        self.net = nn.Sequential(*layers)
        self.out_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StyleEncoder(nn.Module):
    """Per-domain encoder: B×C×H×W -> style code B×S.

    conv7 -> ``n_down`` stride-2 conv4 (the first two double the width), no normalisation (it
    would erase the style) -> global average pool -> 1×1 conv to ``S`` numbers.
    """

    def __init__(self, in_ch: int, dim: int, style_dim: int = 8, n_down: int = 4):
        super().__init__()
        layers = [_conv(in_ch, dim, 7), nn.ReLU(inplace=True)]
        for i in range(n_down):
            out = 2 * dim if i < 2 else dim
            layers += [_conv(dim, out, 4, 2), nn.ReLU(inplace=True)]
            dim = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Adaptive instance norm: normalise each channel of B×c×h×w, then scale by ``1 + gamma`` and
    shift by ``beta`` (both B×c, predicted from the style). ``1 + gamma`` starts near identity."""
    return F.instance_norm(x) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class AdaINResBlock(nn.Module):
    """ResBlock whose two norms are AdaIN: (B×c×h×w, B×4c params) -> B×c×h×w."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.conv2 = _conv(c, c, 3), _conv(c, c, 3)

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        g1, b1, g2, b2 = params.chunk(4, dim=1)
        h = F.relu(adain(self.conv1(x), g1, b1))
        return x + adain(self.conv2(h), g2, b2)


class Decoder(nn.Module):
    """Per-domain decoder: (content B×c×h×w, style B×S) -> image B×C×(h·2^n_up)×(w·2^n_up).

    An MLP maps the style to the AdaIN parameters of ``n_res`` AdaIN ResBlocks; then ``n_up``
    times nearest ×2 upsampling + conv5 + LayerNorm (halving the width), and a conv7 with ``tanh``
    (prepared images are normalised to [-1, 1]).
    """

    def __init__(self, content_dim: int, out_ch: int, style_dim: int = 8, mlp_dim: int = 256,
                 n_res: int = 4, n_up: int = 2):
        super().__init__()
        dim = content_dim
        self.blocks = nn.ModuleList(AdaINResBlock(dim) for _ in range(n_res))
        self.mlp = nn.Sequential(nn.Linear(style_dim, mlp_dim), nn.ReLU(inplace=True),
                                 nn.Linear(mlp_dim, mlp_dim), nn.ReLU(inplace=True),
                                 nn.Linear(mlp_dim, 4 * dim * n_res))
        up = []
        for _ in range(n_up):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(dim, dim // 2, 5),
                   nn.GroupNorm(1, dim // 2), nn.ReLU(inplace=True)]  # GroupNorm(1) = LayerNorm
            dim //= 2
        self.up = nn.Sequential(*up, _conv(dim, out_ch, 7), nn.Tanh())

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        params = self.mlp(style).chunk(len(self.blocks), dim=1) if len(self.blocks) else []
        h = content
        for block, p in zip(self.blocks, params):
            h = block(h, p)
        return self.up(h)


class PatchDiscriminator(nn.Module):
    """One LSGAN patch critic: B×C×H×W -> B×n_out×(H/2^n)×(W/2^n) scores (real ≈ 1, fake ≈ 0).

    ``n_out`` > 1 gives one score map per domain (:class:`DomainDiscriminator`)."""

    def __init__(self, in_ch: int, dim: int, n_layers: int = 4, n_out: int = 1):
        super().__init__()
        layers, c = [], in_ch
        for i in range(n_layers):
            out = dim * 2 ** min(i, 3)
            layers += [nn.Conv2d(c, out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            c = out
        layers.append(nn.Conv2d(c, n_out, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiScaleDiscriminator(nn.Module):
    """Image critic at ``n_scales`` resolutions: B×C×H×W -> list of B×n_out×h_k×w_k.

    Scale ``k`` sees the image average-pooled ``k`` times by 2, so coarse scales judge global
    appearance and fine scales texture.
    """

    def __init__(self, in_ch: int, dim: int, n_layers: int = 4, n_scales: int = 3,
                 n_out: int = 1):
        super().__init__()
        self.critics = nn.ModuleList(PatchDiscriminator(in_ch, dim, n_layers, n_out)
                                     for _ in range(n_scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, critic in enumerate(self.critics):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(critic(x))
        return outs


class ContentDiscriminator(nn.Module):
    """Critic on content codes: B×c×h×w -> B×1×h×w, "is this code from the source domain?".

    The encoder is trained to make it undecided (0.5 everywhere), so the content code carries no
    modality information: three conv3 + LeakyReLU, then a 1×1 conv.
    """

    def __init__(self, content_dim: int, dim: int, n_layers: int = 3):
        super().__init__()
        layers, c = [], content_dim
        for _ in range(n_layers):
            layers += [nn.Conv2d(c, dim, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
            c = dim
        layers.append(nn.Conv2d(c, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.net(c)


class StyleTransfer(nn.Module):
    """The generator side: shared content encoder, per-domain style encoders and decoders.

    Built from a :class:`~glua_lib.style.train.StyleConfig` (or any object with its fields).
    Domains are ``"source"`` and ``"target"``; which modality each is depends on the training data.
    """

    def __init__(self, cfg):
        super().__init__()
        self.style_dim = cfg.style_dim
        self.content = ContentEncoder(CHANNELS, cfg.dim, cfg.n_down, cfg.n_res)
        cd = self.content.out_dim
        self.style = nn.ModuleDict({d: StyleEncoder(CHANNELS, cfg.dim, cfg.style_dim)
                                    for d in DOMAINS})
        self.decoder = nn.ModuleDict({
            d: Decoder(cd, CHANNELS, cfg.style_dim, cfg.mlp_dim, cfg.n_res, cfg.n_down)
            for d in DOMAINS})

    def encode(self, x: torch.Tensor, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Images B×C×H×W of ``domain`` -> (content B×4d×H/4×W/4, style B×S)."""
        return self.content(x), self.style[_check(domain)](x)

    def decode(self, content: torch.Tensor, style: torch.Tensor, domain: str) -> torch.Tensor:
        """(content B×4d×H/4×W/4, style B×S) -> images B×C×H×W rendered as ``domain``."""
        return self.decoder[_check(domain)](content, style)

    def translate(self, images: torch.Tensor, to: str = "target",
                  style: torch.Tensor | str | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Render images B×C×H×W of the *other* domain in domain ``to``, keeping their content.

        ``style`` chooses the look:

        - ``None``: the zero style code, the mean of the N(0, I) prior (deterministic);
        - ``"random"``: one N(0, I) draw per image (``generator``, on any device, makes it
          reproducible: the draws are made on its device, then moved to the images' device);
        - a B'×C×H×W tensor: *reference images* of domain ``to``; their style codes are used
          (B' = B, or B' = 1 for one style for all);
        - a B'×S or S tensor: style codes used as they are.
        """
        content = self.content(images)
        b = images.shape[0]
        if style is None:
            code = images.new_zeros(b, self.style_dim)
        elif isinstance(style, str):
            if style != "random":
                raise ValueError(f"style must be None, 'random' or a tensor, got {style!r}")
            where = generator.device if generator is not None else images.device
            code = torch.randn(b, self.style_dim, generator=generator, device=where,
                               dtype=images.dtype).to(images.device)
        elif style.dim() == 4:
            code = self.style[_check(to)](style)
        elif style.dim() in (1, 2) and style.shape[-1] == self.style_dim:
            code = style.reshape(-1, self.style_dim)
        else:
            raise ValueError(f"style tensor of shape {tuple(style.shape)}: expected reference "
                             f"images B×C×H×W or codes B×{self.style_dim}")
        if code.shape[0] == 1 and b > 1:
            code = code.expand(b, -1)
        if code.shape[0] != b:
            raise ValueError(f"{code.shape[0]} styles for {b} images; give 1 or {b}")
        return self.decoder[_check(to)](content, code.to(content.dtype))


class Discriminators(nn.Module):
    """All critics of one run: a multi-scale image critic per domain and the content critic."""

    def __init__(self, cfg):
        super().__init__()
        self.image = nn.ModuleDict({
            d: MultiScaleDiscriminator(CHANNELS, cfg.dis_dim, cfg.dis_layers, cfg.dis_scales)
            for d in DOMAINS})
        self.content = ContentDiscriminator(cfg.dim * 2 ** cfg.n_down, cfg.dis_dim)


class DomainTranslator(nn.Module):
    """The authors' translator (GLUA's synthesis subnet): **one** encoder and **one** decoder,
    both told the domain by a label, so the style *is* the domain (``StyleConfig.arch="domain"``).

    ::

        x (B×C×H×W), domain d --[x ‖ one-hot(d) planes]--> ContentEncoder --> c (B×4d×H/4×W/4)
        c, one-hot(d') (B×2) --Decoder: MLP → AdaIN--> x rendered as d'

    The encoder sees the image with two constant planes holding the one-hot label (StarGAN's
    way of conditioning a convolution); the decoder maps the one-hot label through an MLP to its
    AdaIN parameters (the figure of the paper). The authors' layer sizes are not published
    (their ``tmpnetworks`` module is missing), so the blocks are this library's
    :class:`ContentEncoder` and :class:`Decoder`, sized by the same config fields as
    :class:`StyleTransfer`. The same interface: :meth:`encode` -> (content, code),
    :meth:`decode`, :meth:`translate`; a *code* here is a B×2 domain label.
    """

    def __init__(self, cfg):
        super().__init__()
        self.style_dim = len(DOMAINS)  # the code is the one-hot domain label
        self.content = ContentEncoder(CHANNELS + len(DOMAINS), cfg.dim, cfg.n_down, cfg.n_res)
        self.decoder = Decoder(self.content.out_dim, CHANNELS, self.style_dim, cfg.mlp_dim,
                               cfg.n_res, cfg.n_down)

    def code(self, domain: str, like: torch.Tensor) -> torch.Tensor:
        """The one-hot label B×2 of ``domain`` for a batch ``like`` (B×…), on its device/dtype."""
        one = like.new_zeros(like.shape[0], self.style_dim)
        one[:, DOMAINS.index(_check(domain))] = 1
        return one

    def encode(self, x: torch.Tensor, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Images B×C×H×W of ``domain`` -> (content B×4d×H/4×W/4, the domain's code B×2)."""
        code = self.code(domain, x)
        planes = code[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.content(torch.cat([x, planes], 1)), code

    def decode(self, content: torch.Tensor, style: torch.Tensor | None,
               domain: str) -> torch.Tensor:
        """(content B×4d×H/4×W/4, code B×2 or ``None`` for ``domain``'s) -> images B×C×H×W."""
        return self.decoder(content, self.code(domain, content) if style is None else style)

    def translate(self, images: torch.Tensor, to: str = "target",
                  style: torch.Tensor | str | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Render images B×C×H×W of the *other* domain in domain ``to``, keeping their content.

        ``style``: ``None`` (``to``'s label, the only rendering this model has) or codes B×2 /
        2 used as they are (e.g. a blend of the two labels). Reference images and random styles
        belong to :class:`StyleTransfer`; asking for them here is a ``ValueError``.
        """
        other = DOMAINS[1 - DOMAINS.index(_check(to))]
        content, _ = self.encode(images, other)
        if style is None:
            return self.decode(content, None, to)
        if isinstance(style, str) or style.dim() not in (1, 2) or style.shape[-1] != 2:
            raise ValueError(f"the domain-label translator renders one style per domain; style "
                             f"must be None or codes B×2, got {style!r:.60}")
        code = style.reshape(-1, 2).to(content.dtype)
        if code.shape[0] not in (1, images.shape[0]):
            raise ValueError(f"{code.shape[0]} codes for {images.shape[0]} images; give 1 or "
                             f"{images.shape[0]}")
        return self.decoder(content, code.expand(images.shape[0], -1))


class DomainDiscriminator(nn.Module):
    """The authors' one domain-conditional critic: a multi-scale patch critic with one score map
    per domain; ``forward(x, domain)`` -> list over scales of B×1×h_k×w_k, that domain's map
    ("is this a real image of ``domain``?")."""

    def __init__(self, cfg):
        super().__init__()
        self.critic = MultiScaleDiscriminator(CHANNELS, cfg.dis_dim, cfg.dis_layers,
                                              cfg.dis_scales, n_out=len(DOMAINS))

    def forward(self, x: torch.Tensor, domain: str) -> list[torch.Tensor]:
        k = DOMAINS.index(_check(domain))
        return [out[:, k:k + 1] for out in self.critic(x)]


ARCHS = ("munit", "domain")  # StyleConfig.arch: MUNIT-like (DAR-UNet) or the authors' translator


def make_translator(cfg) -> StyleTransfer | DomainTranslator:
    """The generator side a config asks for (``cfg.arch``; configs without it are MUNIT-like)."""
    arch = getattr(cfg, "arch", "munit")
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    return DomainTranslator(cfg) if arch == "domain" else StyleTransfer(cfg)


def make_critics(cfg) -> Discriminators | DomainDiscriminator:
    """The critics that go with :func:`make_translator`'s model."""
    return DomainDiscriminator(cfg) if getattr(cfg, "arch", "munit") == "domain" \
        else Discriminators(cfg)


def _check(domain: str) -> str:
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    return domain


def n_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
