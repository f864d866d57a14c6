"""Training FLOPs of every component, per step and per run, next to SIFA's (an estimate).

    .venv/bin/python benchmarks/flops.py [--profiles demo gpu16 full] \
        [--methods none global local local-unmasked glua glua-unmasked local-lossweight \
         glua-lossweight oracle] \
        [--backbones unet deeplab] [--count-batch B] [--memory] [--batch-sizes 1 2 4 ...] \
        [--json OUT]

**What is counted.** ``torch.utils.flop_counter.FlopCounterMode`` around one real optimisation
step on random inputs of the profile's slice size (CPU, float32), forward and backward:

* ``style``: :meth:`glua_lib.style.train.StyleTrainer.step` of ``StyleConfig.from_profile``:
  one generator update (all encodes, decodes and critic passes of ``generator_terms``) and one
  critic update, both domains; ``B`` slices *per domain*.
* segmenter (``SegConfig.from_profile(profile, method=..., backbone=...)``, the model of
  ``build_model``, 5 classes as both tasks have): the step of ``train_seg``: forward of the
  labelled batch, and for the methods that see target images (``local``, ``glua``,
  ``local-lossweight``, ``glua-lossweight``) the forward of the target batch through the method's
  ``target_feature_mask``, the hook's ``loss``; then the backward and the hook's
  ``after_step`` (its discriminators' own forward and backward). ``none``, ``global`` and
  ``oracle`` are the same plain step (``global`` trains on translated source slices made
  before training; ``oracle`` on target slices). ``B`` slices per domain.

The counter counts matrix products and convolutions (2 FLOPs per multiply-add), forward and
backward, as PyTorch dispatches them; element-wise work (norms, activations, losses, Adam's
update) is not counted, nor data loading. Every counted op is per sample, so a step's FLOPs are
linear in the batch: by default ``full`` is counted on 1 slice per domain and multiplied by the
batch (``--count-batch``; the test suite checks the linearity), ``demo`` on its own batch.

**Per run** = per step × the profile's steps (``StyleConfig.from_profile(p).steps`` for the style
model, ``SegConfig.from_profile(p).steps`` for a segmenter). **Per task, direction and seed** of a
method that trains on translated source (``global``, ``glua``, ``glua-lossweight``) = the style run +
its segmenter run (the translation of the source slices before training is inference only,
forward passes of a few thousand slices, well under 1 % of the style run, and not counted).

**SIFA** (Chen et al., AAAI 2019; TMI 2020; the released TensorFlow code ``cchen-cc/SIFA``) is
counted the same way on a stand-in written here from its published layer sizes: 256×256
single-channel slices, batch 8, 20,000 iterations. This is an ESTIMATE, not SIFA's code:

* generator ``G_A`` (source→target; CycleGAN's ResNet generator, ``ngf = 32``): c7s1-32, d64,
  d128, 9 residual blocks of 128 channels, u64, u32 (transposed 3×3 /2), c7s1-1.
* shared encoder ``E_B`` (16 base channels, a dilated residual network): c7-16, res16, pool,
  res32, pool, res64 ×2, pool, res128 ×2, res256 ×4, res512 ×2, 2 dilated (×2) res512, two 3×3
  convs 512; output 512×32×32 (and ``E_B``'s ``r12`` output for the low-level head).
* decoder ``De_B`` (target→source): 3×3 conv 512→128, 4 residual blocks of 128, transposed
  3×3 /2 convs to 64, 64, 32, c7s1-1 (output 256×256).
* segmenters ``S_B`` and ``S_B_ll``: 1×1 conv 512→5, bilinear upsampling ×8.
* discriminators (PatchGAN, 4×4 convs 64-128-256-512 (strides 2, 2, 2, 1) → 1): ``D_B`` on
  target images, ``D_A`` on source images with a second (auxiliary) output channel for the
  reconstructed-source task, ``D_P`` and ``D_P_ll`` on the two segmenters' 5-channel outputs.
* one iteration as the released code runs it: 7 ``session.run`` calls (``g_A``, ``d_B``,
  ``s_B``, ``g_B``, ``d_A``, ``d_P``, ``d_P_ll`` trainers), each computing the forward passes its
  loss needs and the gradients into its own variables only (TensorFlow recomputes the shared
  forward passes in every call; emulated here with ``torch.autograd.grad`` on that variable
  list). The image pool's fakes are random inputs. Norms (batch norm in ``E_B``, instance norm
  elsewhere; affine instance norm throughout here), dropout and activations add no counted
  FLOPs, so the stand-in does not copy them exactly. Also printed: the same networks with every
  forward pass computed once and one backward (what a re-implementation would do).

The issue that asked for this script quotes ≈ 1,300 GFLOP per image pair for a whole SIFA
iteration and ≈ 207 PFLOP for its schedule (20,000 iterations of 8); both are printed next to
the count.

**Peak memory** (``--memory``): one style step and one step of each selected segmenter method
per batch size (``--batch-sizes``, default the profile's batch), each in a fresh subprocess
(after a warm-up step, so Adam's state is allocated): ``torch.cuda.max_memory_allocated`` on a
GPU (AMP as the profile says), else the process's peak resident set size (``ru_maxrss``, torch
and Python included).

**Hours** on a GPU are ESTIMATES: FLOPs ÷ an assumed sustained throughput (:data:`GPU_RATES`),
not measurements.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glua_lib.config import PROFILES, Profile  # noqa: E402
from glua_lib.costs import N_CLASSES, count_flops, human, seg_step, style_step  # noqa: E402
from glua_lib.runtime import set_seed  # noqa: E402
from glua_lib.seg.losses import DiceCELoss  # noqa: E402
from glua_lib.seg.train import SegConfig, build_model, get_method  # noqa: E402
from glua_lib.style.train import StyleConfig, StyleTrainer  # noqa: E402

METHODS = ("none", "global", "local", "local-unmasked", "glua", "glua-unmasked",
           "local-lossweight", "glua-lossweight", "oracle")
BACKBONES = ("unet", "deeplab")

# SIFA's schedule (config_param.json of cchen-cc/SIFA) and the issue's figures for it
SIFA_SIZE, SIFA_BATCH, SIFA_ITERATIONS = 256, 8, 20_000
ISSUE_SIFA_PAIR_GFLOP, ISSUE_SIFA_RUN_PFLOP = 1_300.0, 207.0

# assumed sustained training throughputs (FLOP/s) for the hour ESTIMATES: mixed precision,
# convolution nets, well below the data-sheet peaks (T4 65, A100 312, H100 SXM ~990 dense TFLOP/s)
GPU_RATES = {"T4": 20e12, "A100": 100e12, "H100": 250e12}


# ---------------------------------------------------------------------------------------------
# counting


def _count_batch(profile: Profile, batch: int, count_batch: int | None) -> int:
    """Slices per domain actually run: ``count_batch`` (0: the batch itself), by default the
    whole batch for slices up to 128² (``demo``) and 1 for larger ones; never more than
    ``batch``."""
    if count_batch is None:
        count_batch = batch if profile.slice_size <= 128 else 1
    return batch if count_batch <= 0 else min(count_batch, batch)


def _profile(profile: Profile | str) -> Profile:
    return profile if isinstance(profile, Profile) else PROFILES[profile]


def count_style_step(profile: Profile | str, count_batch: int | None = None) -> dict:
    """FLOPs of one :meth:`StyleTrainer.step` of the profile's style model (CPU, float32).

    Returns ``{"flops": per step at the config's batch, "batch", "counted_batch",
    "steps"}``; ``flops`` is the count on ``counted_batch`` slices per domain × batch /
    counted_batch (exact: the counted ops are per sample).
    """
    profile = _profile(profile)
    config = StyleConfig.from_profile(profile)
    b = _count_batch(profile, config.batch_size, count_batch)
    set_seed(0)
    flops = count_flops(style_step(config, "cpu", b))
    return {"flops": flops * config.batch_size // b, "batch": config.batch_size,
            "counted_batch": b, "steps": config.steps}


def seg_config(profile: Profile | str, method: str, backbone: str = "unet") -> SegConfig:
    """The segmenter config of ``method`` (and ``backbone``) in the profile, validated."""
    return SegConfig.from_profile(_profile(profile), method=method, backbone=backbone).validate()


def count_seg_step(profile: Profile | str, method: str, backbone: str = "unet",
                   count_batch: int | None = None) -> dict:
    """FLOPs of one segmenter training step of ``method`` (:func:`glua_lib.costs.seg_step`).

    Returns ``{"flops": per step at the config's batch, "batch", "counted_batch", "steps",
    "sees_target"}``.
    """
    profile = _profile(profile)
    config = seg_config(profile, method, backbone)
    b = _count_batch(profile, config.batch_size, count_batch)
    set_seed(config.seed)
    flops = count_flops(seg_step(config, profile.slice_size, "cpu", b))
    return {"flops": flops * config.batch_size // b, "batch": config.batch_size,
            "counted_batch": b, "steps": config.steps,
            "sees_target": get_method(method).uses_target_images}


def backbone_methods(backbone: str, methods) -> list[str]:
    """The ``methods`` that can train ``backbone``: the loss-weighting ``local-lossweight`` and
    ``glua-lossweight`` watch U-Net levels, their settings refuse DeepLab-v2
    (``LocalConfig.validate``)."""
    def fits(method: str) -> bool:
        try:
            get_method(method).settings_for(seg_config("demo", method, backbone))
        except ValueError:
            return False
        return True

    return [m for m in methods if fits(m)]


# ---------------------------------------------------------------------------------------------
# SIFA stand-in (module docstring: an estimate from the published layer sizes)


def _cna(c_in, c_out, k, stride=1, dilation=1, norm=True, act=True):
    pad = dilation * (k - 1) // 2
    layers = [nn.Conv2d(c_in, c_out, k, stride, pad, dilation=dilation)]
    if norm:
        layers.append(nn.InstanceNorm2d(c_out, affine=True))
    if act:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _up(c_in, c_out):
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1),
                         nn.InstanceNorm2d(c_out, affine=True), nn.ReLU())


class _Res(nn.Module):
    """SIFA's residual block: two 3×3 convs (dilated in the ``drn`` blocks); a block that widens
    pads its input's channels with zeros (no FLOPs)."""

    def __init__(self, c_in, c_out, dilation=1):
        super().__init__()
        self.extra = c_out - c_in
        self.body = nn.Sequential(_cna(c_in, c_out, 3, dilation=dilation),
                                  _cna(c_out, c_out, 3, dilation=dilation, act=False))

    def forward(self, x):
        skip = F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(self.body(x) + skip)


class SifaGenerator(nn.Module):
    """``G_A``: c7s1-32, d64, d128, 9 residual blocks of 128, u64, u32, c7s1-1, tanh."""

    def __init__(self, ngf=32):
        super().__init__()
        self.net = nn.Sequential(
            _cna(1, ngf, 7), _cna(ngf, 2 * ngf, 3, 2), _cna(2 * ngf, 4 * ngf, 3, 2),
            *[_Res(4 * ngf, 4 * ngf) for _ in range(9)],
            _up(4 * ngf, 2 * ngf), _up(2 * ngf, ngf), _cna(ngf, 1, 7, norm=False, act=False))

    def forward(self, x):
        return torch.tanh(x + self.net(x))  # skip=1 in the released config


class SifaEncoder(nn.Module):
    """``E_B``: returns (deep 512×H/8 features, ``r12``'s 512×H/8 features for ``S_B_ll``)."""

    def __init__(self, fb=16):
        super().__init__()
        pool = nn.MaxPool2d(2)
        self.low = nn.Sequential(
            _cna(1, fb, 7), _Res(fb, fb), pool, _Res(fb, 2 * fb), pool,
            _Res(2 * fb, 4 * fb), _Res(4 * fb, 4 * fb), pool,
            _Res(4 * fb, 8 * fb), _Res(8 * fb, 8 * fb), _Res(8 * fb, 16 * fb),
            *[_Res(16 * fb, 16 * fb) for _ in range(3)], _Res(16 * fb, 32 * fb),
            _Res(32 * fb, 32 * fb))
        self.high = nn.Sequential(_Res(32 * fb, 32 * fb, 2), _Res(32 * fb, 32 * fb, 2),
                                  _cna(32 * fb, 32 * fb, 3), _cna(32 * fb, 32 * fb, 3))

    def forward(self, x, low_only=False):
        low = self.low(x)
        return (None if low_only else self.high(low)), low


class SifaDecoder(nn.Module):
    """``De_B``: 3×3 conv 512→128, 4 residual blocks of 128, up to 64, 64, 32, c7s1-1, tanh."""

    def __init__(self, ngf=32, c_in=512):
        super().__init__()
        self.net = nn.Sequential(
            _cna(c_in, 4 * ngf, 3), *[_Res(4 * ngf, 4 * ngf) for _ in range(4)],
            _up(4 * ngf, 2 * ngf), _up(2 * ngf, 2 * ngf), _up(2 * ngf, ngf),
            _cna(ngf, 1, 7, norm=False, act=False))

    def forward(self, latent, image):
        return torch.tanh(image + self.net(latent))  # skip=1 in the released config


class SifaSegmenter(nn.Module):
    """``S_B`` / ``S_B_ll``: 1×1 conv 512→classes, bilinear upsampling to the slice size."""

    def __init__(self, c_in=512, n_classes=N_CLASSES):
        super().__init__()
        self.conv = nn.Conv2d(c_in, n_classes, 1)

    def forward(self, latent, size):
        return F.interpolate(self.conv(latent), size=size, mode="bilinear", align_corners=False)


class SifaDiscriminator(nn.Module):
    """PatchGAN: pad 2, 4×4 convs 64 /2, 128 /2, 256 /2, 512 /1, ``n_out`` /1 (``D_A``: 2,
    the second its auxiliary output)."""

    def __init__(self, c_in=1, ndf=64, n_out=1):
        super().__init__()
        chans, layers = [c_in, ndf, 2 * ndf, 4 * ndf, 8 * ndf], []
        for i, stride in enumerate((2, 2, 2, 1)):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 4, stride, 2)]
            layers += [nn.InstanceNorm2d(chans[i + 1], affine=True)] if i else []
            layers += [nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Conv2d(8 * ndf, n_out, 4, 1, 2))

    def forward(self, x):
        return self.net(x)


class Sifa(nn.Module):
    """The networks of one SIFA run (stand-in; module docstring)."""

    def __init__(self):
        super().__init__()
        self.g_a, self.e_b, self.de_b = SifaGenerator(), SifaEncoder(), SifaDecoder()
        self.s_b, self.s_b_ll = SifaSegmenter(), SifaSegmenter()
        self.d_a, self.d_b = SifaDiscriminator(n_out=2), SifaDiscriminator()
        self.d_p, self.d_p_ll = SifaDiscriminator(N_CLASSES), SifaDiscriminator(N_CLASSES)


def _mse(x, value):
    return ((x - value) ** 2).mean()


def sifa_iteration(net: Sifa, a, b, y_a, pool_a, pool_b, released: bool = True) -> None:
    """One SIFA training iteration on source ``a``, target ``b`` (B×1×H×W), source labels
    ``y_a`` and the image pool's fakes; gradients only (no optimiser update: not counted).

    ``released``: as the released code, 7 ``session.run`` calls that each recompute the
    forward passes their loss needs and take gradients into their own variables only; else
    every forward pass once and one backward of all losses into all networks.
    """
    size = a.shape[-2:]

    def grads(loss, *modules):
        params = [p for m in modules for p in m.parameters()]
        torch.autograd.grad(loss, params, allow_unused=True)

    def translate(target=True, deep=True):
        """The forward passes of ``get_outputs`` up to the encoder that a loss needs: G_A(a),
        E_B of it, and E_B(b) when ``target``; ``deep=False``: E_B only up to ``r12``."""
        o = {"fake_b": net.g_a(a)}
        o["lat_fb"], o["lat_fb_ll"] = net.e_b(o["fake_b"], low_only=not deep)
        if target:
            o["lat_b"], o["lat_b_ll"] = net.e_b(b, low_only=not deep)
        return o

    def cycles(o):
        o["fake_a"] = net.de_b(o["lat_b"], b)
        o["cycle_a"] = net.de_b(o["lat_fb"], o["fake_b"])
        o["cycle_b"] = net.g_a(o["fake_a"])
        return o

    def cycle_loss(o):
        return 10 * ((o["cycle_a"] - a).abs().mean() + (o["cycle_b"] - b).abs().mean())

    def seg_loss(o):
        dice_ce = DiceCELoss()
        p_fb = net.s_b(o["lat_fb"], size)
        p_fb_ll = net.s_b_ll(o["lat_fb_ll"], size)
        p_b, p_b_ll = net.s_b(o["lat_b"], size), net.s_b_ll(o["lat_b_ll"], size)
        d_fa = net.d_a(o["fake_a"])
        g_loss_b = cycle_loss(o) + _mse(d_fa[:, :1], 1)
        return (dice_ce(p_fb, y_a) + 0.1 * dice_ce(p_fb_ll, y_a) + 0.1 * g_loss_b
                + 0.1 * _mse(net.d_p(p_b), 1) + 0.01 * _mse(net.d_p_ll(p_b_ll), 1)
                + 0.1 * _mse(d_fa[:, 1:], 1)), (p_fb, p_fb_ll, p_b, p_b_ll)

    def d_a_loss(o):
        real, fake_pool = net.d_a(a), net.d_a(pool_a)
        cyc = net.d_a(o["cycle_a"])
        return (_mse(real[:, :1], 1) + _mse(fake_pool[:, :1], 0)
                + _mse(cyc[:, 1:], 1) + _mse(fake_pool[:, 1:], 0))

    def d_p_loss(d, p_fake_b, p_b):
        return _mse(d(p_fake_b), 1) + _mse(d(p_b), 0)

    if not released:
        o = cycles(translate())
        s_loss, (p_fb, p_fb_ll, p_b, p_b_ll) = seg_loss(o)
        g_a_loss = cycle_loss(o) + _mse(net.d_b(o["fake_b"]), 1)
        d_b_loss = _mse(net.d_b(b), 1) + _mse(net.d_b(pool_b), 0)
        d_p = d_p_loss(net.d_p, p_fb.detach(), p_b.detach())
        d_p_ll = d_p_loss(net.d_p_ll, p_fb_ll.detach(), p_b_ll.detach())
        d_a = d_a_loss({"cycle_a": o["cycle_a"].detach()})
        (g_a_loss + s_loss + d_b_loss + d_p + d_p_ll + d_a).backward()
        return
    # 1. g_A: cycle losses + LSGAN of D_B on G_A(a), into G_A
    o = cycles(translate())
    grads(cycle_loss(o) + _mse(net.d_b(o["fake_b"]), 1), net.g_a)
    # 2. d_B: D_B on real target and the pool's fakes
    grads(_mse(net.d_b(b), 1) + _mse(net.d_b(pool_b), 0), net.d_b)
    # 3. s_B: segmentation, cycles, output and auxiliary adversarial terms, into E_B, S_B, S_B_ll
    o = cycles(translate())
    grads(seg_loss(o)[0], net.e_b, net.s_b, net.s_b_ll)
    # 4. g_B: cycle losses + LSGAN of D_A on De_B(E_B(b)), into De_B
    o = cycles(translate())
    grads(cycle_loss(o) + _mse(net.d_a(o["fake_a"])[:, :1], 1), net.de_b)
    # 5. d_A: real source vs pool, and the auxiliary head on the reconstructed source
    o = translate(target=False)
    o["cycle_a"] = net.de_b(o["lat_fb"], o["fake_b"])
    grads(d_a_loss(o), net.d_a)
    # 6. d_P and 7. d_P_ll: the segmenters' outputs on translated source vs on target
    o = translate()
    grads(d_p_loss(net.d_p, net.s_b(o["lat_fb"], size), net.s_b(o["lat_b"], size)), net.d_p)
    o = translate(deep=False)
    grads(d_p_loss(net.d_p_ll, net.s_b_ll(o["lat_fb_ll"], size),
                   net.s_b_ll(o["lat_b_ll"], size)), net.d_p_ll)


def count_sifa_iteration(size: int = SIFA_SIZE, batch: int = SIFA_BATCH, count_batch: int = 1,
                         released: bool = True) -> dict:
    """FLOPs of one SIFA iteration of ``batch`` image pairs (stand-in, an estimate), counted on
    ``count_batch`` pairs and scaled. Returns ``{"flops", "batch", "counted_batch", "steps"}``
    (``steps``: SIFA's 20,000 iterations)."""
    b = min(max(count_batch, 1), batch)
    set_seed(0)
    net = Sifa()
    a, bb, pool_a, pool_b = (torch.rand(b, 1, size, size) * 2 - 1 for _ in range(4))
    y_a = torch.randint(0, N_CLASSES, (b, size, size))
    flops = count_flops(lambda: sifa_iteration(net, a, bb, y_a, pool_a, pool_b, released))
    return {"flops": flops * batch // b, "batch": batch, "counted_batch": b,
            "steps": SIFA_ITERATIONS}


# ---------------------------------------------------------------------------------------------
# peak memory (a fresh process per measurement)


def peak_memory(profile: Profile | str, component: str, batch: int, backbone: str = "unet",
                device: str | None = None) -> dict:
    """Peak memory of one training step of ``component`` (``style`` or a segmenter method) at
    ``batch`` slices per domain, in this process (call it in a fresh one: :func:`measure_peak`).
    After a warm-up step, so the optimisers' state is there; CUDA: max allocated (MiB), CPU:
    the process's peak RSS (MiB, torch included)."""
    profile = _profile(profile)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if component == "style":
        config = StyleConfig.from_profile(profile, batch_size=batch)
        trainer = StyleTrainer(config, device)
        x_s, x_t = (torch.rand(batch, 1, config.image_size, config.image_size, device=device)
                    for _ in range(2))
        step = lambda: trainer.step(x_s, x_t)  # noqa: E731
    else:
        config = dataclasses.replace(seg_config(profile, component, backbone), batch_size=batch)
        step = seg_step(config, profile.slice_size, device, batch)
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # noqa: E731
    base = rss()  # imports, models and inputs: what the process held before any step
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return {"peak_mib": torch.cuda.max_memory_allocated(device) / 2**20, "base_mib": None,
                "kind": "CUDA max allocated", "device": torch.cuda.get_device_name(device)}
    return {"peak_mib": rss(), "base_mib": base, "kind": "process peak RSS", "device": "cpu"}


def measure_peak(profile: str, component: str, batch: int, backbone: str = "unet") -> dict:
    """:func:`peak_memory` in a fresh subprocess of this script (peaks do not carry over)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--peak-of",
           profile, component, str(batch), backbone]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
        return {"peak_mib": None, "kind": "failed", "error": tail[0]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# the table


def duration(seconds: float) -> str:
    """``12 s``, ``3.4 min`` or ``5.6 h``."""
    if seconds < 60:
        return f"{seconds:.2g} s"
    if seconds < 3600:
        return f"{seconds / 60:.2g} min"
    return f"{seconds / 3600:,.3g} h"


def gpu_hours(flops: float) -> str:
    """The ESTIMATED time of ``flops`` on each GPU of :data:`GPU_RATES`."""
    return ", ".join(f"{name} {duration(flops / rate)}" for name, rate in GPU_RATES.items())


def _progress(*args, **kwargs) -> None:
    print(*args, file=sys.stderr, **kwargs)


def collect(profiles, methods, backbones, count_batch=None, sifa=True, log=_progress) -> dict:
    """Every count the table prints: ``{"profiles": {name: {"style": row, "seg": {backbone:
    {method: row}}, "per_task": {backbone: {method: FLOPs}}}}, "sifa": {...}}``; a row has
    ``flops`` (per step), ``per_run``, ``batch``, ``counted_batch``, ``steps``."""
    out: dict = {"profiles": {}, "gpu_rates": GPU_RATES, "chapter_runs": CHAPTER_RUNS}
    for name in profiles:
        log(f"counting {name}: style step ...", flush=True)
        style = count_style_step(name, count_batch)
        style["per_run"] = style["flops"] * style["steps"]
        seg: dict = {}
        for backbone in backbones:
            seg[backbone] = {}
            for method in backbone_methods(backbone, methods):
                log(f"counting {name}: {backbone} {method} step ...", flush=True)
                row = count_seg_step(name, method, backbone, count_batch)
                row["per_run"] = row["flops"] * row["steps"]
                seg[backbone][method] = row
        prof = out["profiles"][name] = {"style": style, "seg": seg}
        prof["per_task"] = {bk: {m: task_total(prof, bk, m) for m in rows}
                            for bk, rows in seg.items()}
        prof["per_chapter"] = {c: chapter_total(prof, c) for c in CHAPTER_RUNS}
    if sifa:
        log("counting SIFA (stand-in) ...", flush=True)
        released = count_sifa_iteration()
        once = count_sifa_iteration(released=False)
        out["sifa"] = {"released": {**released, "per_run": released["flops"] * released["steps"]},
                       "once": {**once, "per_run": once["flops"] * once["steps"]},
                       "issue_pair_gflop": ISSUE_SIFA_PAIR_GFLOP,
                       "issue_run_pflop": ISSUE_SIFA_RUN_PFLOP}
    return out


def task_total(prof: dict, backbone: str, method: str) -> float:
    """FLOPs per task, direction and seed: the segmenter run, plus the style run for methods
    that train on translated source."""
    seg = prof["seg"][backbone][method]["per_run"]
    return seg + (prof["style"]["per_run"] if get_method(method).needs_style_run else 0)


# The runs each chapter trains from an empty cache (U-Net): chapter 2 the style run and the
# `oracle` judge of its translations, chapter 3 `local` and the three it is compared with,
# chapter 4 the style run and every method of the ablation. (In `demo` the book installs its
# committed copies instead of training the runs a chapter only reads.)
CHAPTER_RUNS = {"chapter 2": ("style", "oracle"),
                "chapter 3": ("local", "none", "local-unmasked", "oracle"),
                "chapter 4": ("style", "none", "global", "local", "glua-unmasked", "glua",
                              "oracle")}


def chapter_total(prof: dict, chapter: str) -> float | None:
    """FLOPs of the runs ``chapter`` trains from an empty cache (:data:`CHAPTER_RUNS`), or
    ``None`` when a method of it was not counted."""
    rows = prof["seg"].get("unet", {})
    total = 0.0
    for run in CHAPTER_RUNS[chapter]:
        if run == "style":
            total += prof["style"]["per_run"]
        elif run in rows:
            total += rows[run]["per_run"]
        else:
            return None
    return total


def _ratio(x: float, ref: float | None) -> str:
    """``x / ref`` as ``1.23×`` (empty without a reference)."""
    if not ref:
        return ""
    q = x / ref
    return f"{q:.2e}×" if q < 0.01 else f"{q:,.3g}×"


def print_table(result: dict) -> None:
    sifa = result.get("sifa")
    ref = sifa["released"] if sifa else None
    ref_pair = ref["flops"] / ref["batch"] if ref else None
    ref_run = ref["per_run"] if ref else None
    for name, prof in result["profiles"].items():
        p = PROFILES[name]
        print(f"\n== profile {name}: {p.slice_size}×{p.slice_size} slices; FLOPs counted by "
              "FlopCounterMode (matmul + conv, forward + backward) ==")
        vs = "÷ SIFA" if sifa else ""
        print(f"{'component':<26}{'batch':>6}{'per step':>15}{'per slice':>15}{vs:>11}"
              f"{'steps':>9}{'per run':>15}{vs:>11}")

        def row(label, r):
            pair = r["flops"] / r["batch"]
            k = r["batch"] / r["counted_batch"]
            note = "" if k == 1 else f"  (counted on {r['counted_batch']}, ×{k:g})"
            print(f"{label:<26}{r['batch']:>6}{human(r['flops']):>15}{human(pair):>15}"
                  f"{_ratio(pair, ref_pair):>11}{r['steps']:>9,}{human(r['per_run']):>15}"
                  f"{_ratio(r['per_run'], ref_run):>11}{note}")

        row("style (G + D update)", prof["style"])
        for backbone, rows in prof["seg"].items():
            for method, r in rows.items():
                row(f"seg {backbone} {method}" + (" *" if r["sees_target"] else ""), r)
        print("  per slice = per step / batch (batch: slices per domain; the style model and the "
              "* methods see a source and a target slice each); * sees target images")
        if sifa:
            print("  ÷ SIFA: ratio to SIFA's estimate below (per image pair, per run)")
        print("per task, direction and seed (style run + segmenter run for the methods that "
              "train on translated source):")
        for backbone, rows in prof["seg"].items():
            for method in rows:
                total = task_total(prof, backbone, method)
                parts = ("style + seg" if get_method(method).needs_style_run else "seg")
                print(f"  {backbone:<8}{method:<12}{human(total):>15} {f'({parts})':<14}"
                      f"{f'{_ratio(total, ref_run)} SIFA' if sifa else '':>15}"
                      f"   [estimate: {gpu_hours(total)}]")
        print("per chapter, from an empty cache (the runs it trains; U-Net):")
        for chapter, runs in CHAPTER_RUNS.items():
            total = chapter_total(prof, chapter)
            if total is not None:
                print(f"  {chapter:<10}{human(total):>15}   [estimate: {gpu_hours(total)}]"
                      f"   {', '.join(runs)}")
    if sifa:
        r, o = sifa["released"], sifa["once"]
        print(f"\n== SIFA: an ESTIMATE from a stand-in of its published layer sizes "
              f"({SIFA_SIZE}×{SIFA_SIZE}, batch {r['batch']}, {r['steps']:,} iterations) ==")
        for label, x in (("as released (7 session runs)", r), ("every forward once", o)):
            print(f"  {label:<30} per iteration {human(x['flops']):>14}, per image pair "
                  f"{human(x['flops'] / x['batch']):>14}, per run {human(x['per_run']):>14}"
                  f"   [estimate: {gpu_hours(x['per_run'])}]")
        print(f"  the issue's figures: ≈ {ISSUE_SIFA_PAIR_GFLOP:,.0f} GFLOP per image pair, "
              f"≈ {ISSUE_SIFA_RUN_PFLOP:,.0f} PFLOP per run; this estimate ÷ the issue's: "
              f"{r['flops'] / r['batch'] / 1e9 / ISSUE_SIFA_PAIR_GFLOP:.2f} (pair), "
              f"{r['per_run'] / 1e15 / ISSUE_SIFA_RUN_PFLOP:.2f} (run)")
    print("\nHours are ESTIMATES, not measurements: FLOPs ÷ an assumed sustained mixed-precision "
          "throughput of " + ", ".join(f"{k} {v / 1e12:.0f} TFLOP/s" for k, v in GPU_RATES.items())
          + "; small layers (demo's) run far below such rates, so there they are lower bounds.")


def print_memory(profiles, methods, backbones, batch_sizes) -> dict:
    out: dict = {}
    for name in profiles:
        p = PROFILES[name]
        sizes = batch_sizes or [p.batch_size]
        print(f"\n== peak memory, profile {name} ({p.slice_size}², one step after a warm-up, "
              f"fresh process each) ==")
        comps = [("style", "unet")] + [(m, bk) for bk in backbones
                                       for m in backbone_methods(bk, methods)]
        out[name] = {}
        for comp, backbone in comps:
            label = "style" if comp == "style" else f"seg {backbone} {comp}"
            cells = []
            for b in sizes:
                r = measure_peak(name, comp, b, backbone)
                out[name].setdefault(label, {})[str(b)] = r
                if not r["peak_mib"]:
                    cells.append(f"B={b}: failed ({r.get('error', '')})")
                    continue
                more = (f" (+{r['peak_mib'] - r['base_mib']:,.0f})" if r.get("base_mib")
                        else "")
                cells.append(f"B={b}: {r['peak_mib']:,.0f} MiB{more}")
            print(f"  {label:<24}" + "   ".join(cells), flush=True)
        print("  CPU: the process's peak RSS, torch and Python included (+: above what it held "
              "before the first step); CUDA: max allocated", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", choices=sorted(PROFILES),
                        default=list(PROFILES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        help="segmenter methods (default: %(default)s)")
    parser.add_argument("--backbones", nargs="+", choices=BACKBONES, default=list(BACKBONES))
    parser.add_argument("--count-batch", type=int, default=None, metavar="B",
                        help="slices per domain actually run, the count scaled to the batch "
                             "(default: the batch up to 128² slices (demo), else 1; 0: always "
                             "the batch)")
    parser.add_argument("--no-sifa", action="store_true", help="leave SIFA's estimate out")
    parser.add_argument("--memory", action="store_true",
                        help="also measure peak memory per batch size (a process each)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=None, metavar="B",
                        help="batch sizes of --memory (default: the profile's)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="also write the counts as JSON")
    parser.add_argument("--peak-of", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak_of:  # the child process of measure_peak
        name, comp, batch, backbone = args.peak_of
        print(json.dumps(peak_memory(name, comp, int(batch), backbone)))
        return 0
    for method in args.methods:
        get_method(method)  # unknown names fail before any counting
    result = collect(args.profiles, args.methods, args.backbones, args.count_batch,
                     sifa=not args.no_sifa)
    print(f"torch {torch.__version__}, counted on the CPU in float32 "
          f"(the count does not depend on the device or precision)")
    print_table(result)
    if args.memory:
        result["memory"] = print_memory(args.profiles, args.methods, args.backbones,
                                        args.batch_sizes)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
