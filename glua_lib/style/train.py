"""Training the style-transfer model: config, one optimisation step, and the resumable loop.

A run folder ``RUN_DIR`` written by :func:`train_style` holds:

=====================  ======================================================================
``config.json``        the :class:`StyleConfig` (``glua_lib.save_config``)
``run.json``           the data (task, modalities, folders) and ``trained_on``: the machine of
                       each training stretch (device, torch, threads, first step)
``checkpoint.pt``      weights, optimisers, step, RNG states, and the style codes of the real
                       target training slices (``translate_folder`` clusters them)
``log.jsonl``          one JSON line of loss terms every ``log_every`` steps
``samples/*.png``      rows: source, source→target (prior style, target style), target,
                       target→source
=====================  ======================================================================

Rerunning on a folder with a checkpoint continues from its step with the same RNG states and data
order (batches are a pure function of the step, see :class:`~glua_lib.runfolder.StepBatches`), so an interrupted
run ends with the same weights as an uninterrupted one: bit for bit on a CPU with the same thread
count; on CUDA up to the non-determinism of some cuDNN kernels. A CPU run with another thread count
sums floats in another order and so follows another GAN trajectory: a resume on another machine
warns, and ``run.json`` names the machine of every stretch.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from glua_lib.checkpoint import (kept_checkpoint, load_checkpoint, rng_state, save_checkpoint,
                                 set_rng_state)
from glua_lib.config import Profile, config_to_dict, save_config
from glua_lib.data.datasets import SliceDataset
from glua_lib.data.prepared import check_slice_size, list_subjects, read_manifest
from glua_lib.io import atomic_path, atomic_write_text
from glua_lib.runfolder import (ELAPSED, LOG, TrainingDiverged, append_log, check_resume,
                                step_loader, trim_log)
from glua_lib.runtime import (amp_enabled, autocast, device_description, diverged_advice,
                              get_device, out_of_memory, set_seed)
from glua_lib.seg.losses import DiceCELoss
from glua_lib.seg.unet import UNet
from glua_lib.style import losses
from glua_lib.style.models import (ARCHS, CHANNELS, Discriminators, DomainDiscriminator,
                                   DomainTranslator, StyleTransfer, make_critics,
                                   make_translator)

CHECKPOINT = "checkpoint.pt"


# fields added after the first runs were saved: their value in configs that lack them (off)
_ADDED_LATER = {"w_structure": 0.0, "w_class": 0.0, "arch": "munit", "w_sem": 0.0}
# settings that only matter while the field they belong to is on (not at its _ADDED_LATER value)
_SETTINGS_OF = {"w_class": ("class_start", "class_conf", "labeller_width", "labeller_depth",
                            "labeller_lr"),
                "w_sem": ("sem_start", "labeller_width", "labeller_depth", "labeller_lr"),
                "arch": ("pool_size",)}
_LATER_SETTINGS = {"pool_size": 50, "sem_start": 0}  # defaults of settings added with them


# The translators a profile or config picks by name (Profile.style_arch, StyleConfig.arch):
# StyleConfig fields each one changes. "domain" is the authors' synthesis subnet with their loss
# weights (reconstruction 20, cycle 20, content consistency 1, adversarial 1; GLUA's
# synthesis_subnet.py) and none of the MUNIT side's terms (style codes, content critic, style
# prior, MIND structure term, reference styles), which it has no parts for.
STYLE_ARCHS: dict[str, dict] = {
    "munit": {},
    "domain": dict(arch="domain", w_image=20.0, w_cycle=20.0, w_content=1.0, w_adv=1.0,
                   w_style=0.0, w_content_adv=0.0, w_style_prior=0.0, w_structure=0.0,
                   ref_styles=False),
}


# The style model's sizes a profile picks by name (Profile.style_size): StyleConfig fields that
# differ from the paper-scale defaults. "medium"'s widths and learning rate are our choice for a
# 16 GB GPU (half the paper's widths, about a quarter of its convolution FLOPs), not measured
# against "paper"; "small" was chosen for the CPU demo (benchmarks/RESULTS.md).
STYLE_SIZES: dict[str, dict] = {
    "small": dict(dim=8, n_res=2, mlp_dim=64, dis_dim=16, dis_layers=3, dis_scales=2, lr=4e-4,
                  sample_every=300, checkpoint_every=300, log_every=10),
    "medium": dict(dim=32, mlp_dim=128, dis_dim=32, lr=2e-4,
                   sample_every=1000, checkpoint_every=1000, log_every=50),
    "paper": dict(sample_every=2000, checkpoint_every=2000, log_every=50),
}


@dataclass(frozen=True)
class StyleConfig:
    """Every setting of a style-transfer run (defaults: paper scale, see :meth:`from_profile`)."""

    # architecture
    arch: str = "munit"  # "munit": style encoders + per-domain decoders; "domain": the authors'
    dim: int = 64  # base width d; the content code has d·2^n_down channels
    n_down: int = 2  # stride-2 convs of the content encoder: the code is at 1/2^n_down resolution
    n_res: int = 4  # ResBlocks in the content encoder and AdaIN ResBlocks in each decoder
    style_dim: int = 8  # length S of a style code
    mlp_dim: int = 256  # hidden width of the MLP that maps a style code to AdaIN parameters
    dis_dim: int = 64  # base width of the image and content discriminators
    dis_layers: int = 4  # stride-2 convs per patch critic
    dis_scales: int = 3  # image scales of each multi-scale image critic
    # optimisation (Adam for generator and critics alike)
    lr: float = 1e-4  # learning rate
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas (MUNIT)
    weight_decay: float = 1e-4  # Adam weight decay
    # loss weights
    w_image: float = 10.0  # image self-reconstruction (DAR-UNet: 10)
    w_cycle: float = 10.0  # cross-domain cycle reconstruction (DAR-UNet: 10)
    w_content: float = 1.0  # content-code reconstruction after translation (DAR-UNet: 1)
    w_style: float = 1.0  # style-code reconstruction after translation (DAR-UNet: 1)
    w_adv: float = 1.0  # LSGAN image adversarial, both domains (DAR-UNet: 1)
    w_content_adv: float = 1.0  # content-code adversarial: domain-invariant content (ours)
    w_style_prior: float = 0.1  # moment matching of encoded styles to N(0, I) (ours)
    w_structure: float = 5.0  # MIND structure loss, each image vs its translation (ours)
    w_class: float = 0.0  # class-wise appearance loss vs pseudo-labelled target, e.g. 5 (ours)
    class_start: int = 25_000  # steps before it starts (the labeller learns first)
    class_conf: float = 0.9  # softmax confidence a target pixel's pseudo-label needs
    labeller_width: int = 16  # U-Net width of the labeller (trained on translated source)
    labeller_depth: int = 4  # U-Net levels of the labeller
    labeller_lr: float = 2e-3  # Adam learning rate of the labeller
    ref_styles: bool = True  # half the translations styled by encoded real slices (ours)
    w_sem: float = 0.0  # semantic consistency: labeller's Dice+CE on translated source (SIFA)
    sem_start: int = 0  # steps before the semantic term starts (the labeller learns first)
    pool_size: int = 50  # "domain": past translations the critic also sees (CycleGAN's pool)
    # budget, data and bookkeeping
    steps: int = 50_000  # optimisation steps (one generator + one critic update each)
    batch_size: int = 16  # slices per domain per step
    image_size: int = 256  # slice size H = W the data must have
    amp: bool = True  # mixed precision (float16 autocast + GradScaler), only on CUDA
    seed: int = 0  # seeds initialisation, data order and the random styles
    num_workers: int = 0  # DataLoader workers per domain
    log_every: int = 10  # steps between lines of log.jsonl
    sample_every: int = 1000  # steps between sample grids (0: only at the end)
    checkpoint_every: int = 1000  # steps between checkpoints (0: only at the end)

    @classmethod
    def from_profile(cls, profile: Profile, **overrides) -> "StyleConfig":
        """The config for a profile; ``overrides`` replace any field.

        The profile gives the budget (``style_steps`` of ``style_batch`` slices per domain), the
        slice size and AMP, and names the widths (:data:`STYLE_SIZES`): ``paper`` is
        MUNIT/DAR-UNet scale (``full``), ``medium`` half its width for a 16 GB GPU (``gpu16``),
        ``small`` a narrow model that trains in minutes on two CPU cores (``demo``). The
        class-wise term, when switched on, starts halfway. The translator is the profile's
        ``style_arch`` unless ``overrides`` name an ``arch``; its loss weights
        (:data:`STYLE_ARCHS`) come before the overrides.
        """
        common = dict(steps=profile.style_steps, batch_size=profile.style_batch,
                      image_size=profile.slice_size, amp=profile.amp,
                      num_workers=profile.num_workers, class_start=profile.style_steps // 2)
        try:
            sized = STYLE_SIZES[profile.style_size]
        except KeyError:
            raise ValueError(f"profile {profile.name!r}: unknown style_size "
                             f"{profile.style_size!r}; choose one of {sorted(STYLE_SIZES)}") from None
        arch = overrides.get("arch", profile.style_arch)
        if arch not in STYLE_ARCHS:
            raise ValueError(f"unknown translator arch {arch!r}; choose one of "
                             f"{sorted(STYLE_ARCHS)}")
        return dataclasses.replace(cls(**{**common, **sized, **STYLE_ARCHS[arch]}), **overrides)

    @classmethod
    def from_dict(cls, data: dict) -> "StyleConfig":
        """Inverse of ``config_to_dict`` (as stored in checkpoints). A loss added after a
        checkpoint was written is off in its config (the run was trained without it)."""
        data = {**_ADDED_LATER, **_LATER_SETTINGS,
                **{k: v for k, v in data.items() if k != "_type"}}
        data["betas"] = tuple(data["betas"])
        return cls(**data)

    def identity(self) -> dict:
        """``config_to_dict`` without what cannot change the run: a loss added later whose weight
        is off, and that loss's settings. Cached runs are named after it
        (:func:`glua_lib.pipeline.fingerprint`), so a run trained before the loss existed is
        still found, not trained again."""
        data = config_to_dict(self)
        on = {name for name, off in _ADDED_LATER.items() if data[name] != off}
        for name in set(_ADDED_LATER) - on:
            del data[name]
        needed = {key for name in on for key in _SETTINGS_OF.get(name, ())}
        for name in set(_ADDED_LATER) - on:
            for key in _SETTINGS_OF.get(name, ()):
                if key not in needed:
                    data.pop(key, None)
        return data

    def validate(self) -> "StyleConfig":
        """Raise ``ValueError`` for settings that cannot work."""
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.arch == "domain" and (self.w_style or self.w_content_adv or self.w_style_prior
                                      or self.ref_styles):
            raise ValueError("arch 'domain' has no style codes or content critic: set w_style, "
                             "w_content_adv and w_style_prior to 0 and ref_styles to False "
                             "(StyleConfig.from_profile(..., arch='domain') does)")
        if self.pool_size < 0 or self.w_sem < 0 or self.sem_start < 0:
            raise ValueError(f"need pool_size, w_sem and sem_start >= 0; got {self.pool_size}, "
                             f"{self.w_sem}, {self.sem_start}")
        if self.image_size % 2 ** max(self.n_down, self.dis_layers):
            raise ValueError(f"image_size {self.image_size} must be divisible by "
                             f"2^{max(self.n_down, self.dis_layers)} (n_down, dis_layers)")
        for name in ("dim", "style_dim", "mlp_dim", "dis_dim", "steps", "batch_size",
                     "dis_scales", "log_every", "labeller_width", "labeller_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.w_class < 0 or self.class_start < 0 or not 0 <= self.class_conf < 1:
            raise ValueError("need w_class >= 0, class_start >= 0 and 0 <= class_conf < 1; "
                             f"got {self.w_class}, {self.class_start}, {self.class_conf}")
        k = 2 ** self.labeller_depth  # the labeller U-Net's bottleneck must keep 2×2 pixels
        if (self.w_class > 0 or self.w_sem > 0) and (self.image_size % k
                                                      or self.image_size < 2 * k):
            raise ValueError(f"image_size {self.image_size} is too small or not divisible for "
                             f"the labeller (labeller_depth {self.labeller_depth} needs a "
                             f"multiple of {k}, at least {2 * k}); lower labeller_depth or set "
                             "w_class and w_sem to 0")
        return self


# fields that may change when a run is resumed: bookkeeping, the budget, and the precision (a run
# that diverged in float16 goes on in float32; run.json records each stretch's ``amp``)
_RESUMABLE = {"steps", "log_every", "sample_every", "checkpoint_every", "num_workers", "amp"}


# ----------------------------------------------------------------------------------------------
# one optimisation step


def generator_terms(model: StyleTransfer, dis: Discriminators, x_s: torch.Tensor,
                    x_t: torch.Tensor, z_s: torch.Tensor, z_t: torch.Tensor,
                    ref_styles: bool = False):
    """All generator-side loss terms for source/target batches B×1×H×W and prior styles B×S.

    Translations use the prior draws ``z`` as styles (MUNIT). With ``ref_styles`` the first half
    of each batch uses instead the (detached) encoded styles of real slices of the domain
    translated into: the kind of style ``translate_folder`` renders with, so the adversarial,
    cycle and code losses train it too. (Without it a short run renders encoded styles, which
    the decoder only ever saw in self-reconstruction, as a blurred copy of the source.)

    Returns ``(terms, keep)``: a dict of scalar terms (unweighted) and the tensors the critic step
    reuses (content codes and translations, to be detached).
    """
    c_s, s_s = model.encode(x_s, "source")
    c_t, s_t = model.encode(x_t, "target")
    if ref_styles:
        z_t = _mix_styles(z_t, s_t.detach())
        z_s = _mix_styles(z_s, s_s.detach())
    x_st = model.decode(c_s, z_t, "target")  # source content, target style
    x_ts = model.decode(c_t, z_s, "source")
    c_st, z_t_rec = model.encode(x_st, "target")
    c_ts, z_s_rec = model.encode(x_ts, "source")
    terms = {
        "image": losses.image_recon_loss(model.decode(c_s, s_s, "source"), x_s)
        + losses.image_recon_loss(model.decode(c_t, s_t, "target"), x_t),
        "cycle": losses.cycle_loss(model.decode(c_st, s_s, "source"), x_s)
        + losses.cycle_loss(model.decode(c_ts, s_t, "target"), x_t),
        "content": losses.content_recon_loss(c_st, c_s) + losses.content_recon_loss(c_ts, c_t),
        "style": losses.style_recon_loss(z_t_rec, z_t) + losses.style_recon_loss(z_s_rec, z_s),
        "adv": losses.lsgan_g_loss(dis.image["target"](x_st))
        + losses.lsgan_g_loss(dis.image["source"](x_ts)),
        "content_adv": losses.content_adv_g_loss(dis.content(c_s), dis.content(c_t)),
        "style_prior": losses.style_prior_loss(s_s) + losses.style_prior_loss(s_t),
        "structure": losses.structure_loss(x_st, x_s) + losses.structure_loss(x_ts, x_t),
    }
    return terms, {"c_s": c_s, "c_t": c_t, "x_st": x_st, "x_ts": x_ts}


def _mix_styles(z: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Prior draws z (B×S) whose first half is replaced by real styles (B'×S, cycled)."""
    half = len(z) // 2
    pick = torch.arange(half, device=z.device) % len(real)
    return torch.cat([real[pick], z[half:]])


def critic_terms(dis: Discriminators, x_s: torch.Tensor, x_t: torch.Tensor, keep: dict) -> dict:
    """Critic-side terms: real vs translated images per domain, source vs target content codes."""
    k = {name: t.detach() for name, t in keep.items()}
    return {
        "d_image": losses.lsgan_d_loss(dis.image["source"](x_s), dis.image["source"](k["x_ts"]))
        + losses.lsgan_d_loss(dis.image["target"](x_t), dis.image["target"](k["x_st"])),
        "d_content": losses.content_adv_d_loss(dis.content(k["c_s"]), dis.content(k["c_t"])),
    }


def domain_generator_terms(model: DomainTranslator, dis: DomainDiscriminator,
                           x_s: torch.Tensor, x_t: torch.Tensor):
    """The authors' generator terms for source/target batches B×1×H×W (GLUA's
    ``synthesis_subnet.py``): same-domain reconstruction, cycle A→B→A and B→A→B, content
    consistency ``‖E(x) − E(translated x)‖₁`` and the least-squares adversarial term of the one
    domain-conditional critic. Returns ``(terms, keep)`` as :func:`generator_terms` does."""
    c_s, code_s = model.encode(x_s, "source")
    c_t, code_t = model.encode(x_t, "target")
    x_st = model.decode(c_s, code_t, "target")
    x_ts = model.decode(c_t, code_s, "source")
    c_st, _ = model.encode(x_st, "target")
    c_ts, _ = model.encode(x_ts, "source")
    terms = {
        "image": losses.image_recon_loss(model.decode(c_s, code_s, "source"), x_s)
        + losses.image_recon_loss(model.decode(c_t, code_t, "target"), x_t),
        "cycle": losses.cycle_loss(model.decode(c_st, code_s, "source"), x_s)
        + losses.cycle_loss(model.decode(c_ts, code_t, "target"), x_t),
        "content": losses.content_recon_loss(c_st, c_s) + losses.content_recon_loss(c_ts, c_t),
        "adv": losses.lsgan_g_loss(dis(x_st, "target")) + losses.lsgan_g_loss(dis(x_ts, "source")),
    }
    return terms, {"x_st": x_st, "x_ts": x_ts}


def domain_critic_terms(dis: DomainDiscriminator, x_s: torch.Tensor, x_t: torch.Tensor,
                        fake_s: torch.Tensor, fake_t: torch.Tensor) -> dict:
    """The one critic's terms: real images of each domain against translations into it
    (``fake_s`` = target→source, ``fake_t`` = source→target, detached, e.g. from an
    :class:`ImagePool`)."""
    return {"d_image": losses.lsgan_d_loss(dis(x_s, "source"), dis(fake_s, "source"))
            + losses.lsgan_d_loss(dis(x_t, "target"), dis(fake_t, "target"))}


class ImagePool:
    """CycleGAN's history of translations: the critic sees past generators' images too.

    :meth:`query` takes a batch B×C×H×W and returns one of the same shape: while the pool holds
    fewer than ``size`` images each new one is stored and returned; after that, each image is,
    with probability ½, swapped for a stored one (returned instead, the new one stored in its
    place), else returned as it is. The draws come from the pool's own seeded generator, and
    :meth:`state_dict` holds images and generator, so a resumed run draws the same. ``size`` 0
    returns every batch unchanged.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.images = int(size), []
        self.rng = torch.Generator().manual_seed(seed)

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for image in batch.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
                continue
            swap, pick = torch.rand(1, generator=self.rng).item(), torch.randint(
                self.size, (1,), generator=self.rng).item()
            if swap < 0.5:
                out.append(self.images[pick].clone())
                self.images[pick] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"images": [t.cpu() for t in self.images], "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.images = [t.to(device) for t in state["images"]]
        self.rng.set_state(state["rng"].cpu())


class StyleTrainer:
    """Model, critics, optimisers, loss scaler and the random-style generator of one run, and
    with ``w_class > 0`` the labeller U-Net of the class-wise term (``n_classes`` outputs).

    :meth:`step` is one update of the generator then of the critics (the critics see the
    translations of the same forward pass, detached); :meth:`state_dict` holds everything an
    exact resume needs. Mixed precision is used only when ``config.amp`` and the device is CUDA.
    """

    def __init__(self, config: StyleConfig, device: torch.device | str,
                 n_classes: int | None = None):
        self.cfg, self.device = config.validate(), torch.device(device)
        self.model = make_translator(config).to(self.device)
        self.dis = make_critics(config).to(self.device)
        self.domain = config.arch == "domain"  # the authors' translator and its image pools
        self.pools = {d: ImagePool(config.pool_size if self.domain else 0, config.seed + 10 + i)
                      for i, d in enumerate(("source", "target"))}
        adam = dict(lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
        self.opt_g = torch.optim.Adam(self.model.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.dis.parameters(), **adam)
        self.amp = amp_enabled(config.amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        # random styles are drawn on the CPU and moved: a CPU generator's state resumes anywhere
        self.noise = torch.Generator().manual_seed(config.seed)
        self.weights = {"image": config.w_image, "cycle": config.w_cycle,
                        "content": config.w_content, "style": config.w_style,
                        "adv": config.w_adv, "content_adv": config.w_content_adv,
                        "style_prior": config.w_style_prior,
                        "structure": config.w_structure,
                        "d_image": config.w_adv, "d_content": config.w_content_adv}
        self.step_count = 0
        self.labeller = None  # the class-wise and semantic terms' U-Net, when either is on
        if config.w_class > 0 or config.w_sem > 0:
            if not n_classes or n_classes < 2:
                raise ValueError("w_class or w_sem > 0 needs n_classes (label values incl. "
                                 "background)")
            self.n_classes = int(n_classes)
            self.labeller = UNet(CHANNELS, self.n_classes, width=config.labeller_width,
                                 depth=config.labeller_depth).to(self.device)
            self.opt_l = torch.optim.Adam(self.labeller.parameters(), lr=config.labeller_lr)
            self.labeller_loss = DiceCELoss()
            self.weights["class"] = config.w_class
            self.weights["sem"] = config.w_sem

    def _autocast(self):
        return autocast(self.device, self.amp)

    def step(self, x_s: torch.Tensor, x_t: torch.Tensor,
             y_s: torch.Tensor | None = None) -> dict[str, float]:
        """One update on source and target batches B×1×H×W; returns the loss terms as floats.

        With ``w_class > 0`` or ``w_sem > 0`` the source labels ``y_s`` (B×H×W) are needed: the
        labeller learns them on the translated source (detached); its confident predictions on
        the real target are the pseudo-labels of the class-wise term (from ``class_start``), and
        its Dice+CE on the translated source, which reaches the generator through the
        translation (the labeller itself frozen), is the semantic term (from ``sem_start``).

        Raises:
            TrainingDiverged: a loss is NaN or infinite (the caller keeps its last checkpoint).
        """
        if self.labeller is not None and y_s is None:
            raise ValueError("w_class or w_sem > 0: step() needs the source labels y_s")
        x_s = x_s.to(self.device, non_blocking=True)
        x_t = x_t.to(self.device, non_blocking=True)
        s = self.cfg.style_dim
        z_s = torch.randn(len(x_s), s, generator=self.noise).to(self.device)
        z_t = torch.randn(len(x_t), s, generator=self.noise).to(self.device)

        self.dis.requires_grad_(False)  # generator step: gradients flow through, not into, D
        if self.labeller is not None:
            self.labeller.requires_grad_(False)
        with self._autocast():
            if self.domain:
                terms, keep = domain_generator_terms(self.model, self.dis, x_s, x_t)
            else:
                terms, keep = generator_terms(self.model, self.dis, x_s, x_t, z_s, z_t,
                                              self.cfg.ref_styles)
            if self.labeller is not None:
                y_s = y_s.to(self.device, non_blocking=True)
                if self.cfg.w_class > 0:
                    terms["class"] = self._class_term(keep["x_st"], y_s, x_t)
                if self.cfg.w_sem > 0:
                    terms["sem"] = self._sem_term(keep["x_st"], y_s)
            loss_g = sum(self.weights[k] * v for k, v in terms.items())
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)

        self.dis.requires_grad_(True)
        with self._autocast():
            if self.domain:
                d_terms = domain_critic_terms(
                    self.dis, x_s, x_t, self.pools["source"].query(keep["x_ts"].detach()),
                    self.pools["target"].query(keep["x_st"].detach()))
            else:
                d_terms = critic_terms(self.dis, x_s, x_t, keep)
            loss_d = sum(self.weights[k] * v for k, v in d_terms.items())
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)
        if self.labeller is not None:  # the labeller learns the source labels on translations
            self.labeller.requires_grad_(True)
            with self._autocast():
                d_terms["labeller"] = self.labeller_loss(self.labeller(keep["x_st"].detach()), y_s)
            self.opt_l.zero_grad(set_to_none=True)
            self.scaler.scale(d_terms["labeller"]).backward()
            self.scaler.step(self.opt_l)
        self.scaler.update()
        self.step_count += 1

        names = [*terms, "g_total", *d_terms, "d_total"]
        values = torch.stack([*terms.values(), loss_g, *d_terms.values(), loss_d]).tolist()
        out = dict(zip(names, values))
        bad = [k for k, v in out.items() if not np.isfinite(v)]
        if bad:
            raise TrainingDiverged(f"non-finite loss at step {self.step_count}: "
                                   + ", ".join(f"{k}={out[k]}" for k in bad))
        return out

    def _class_term(self, x_st: torch.Tensor, y_s: torch.Tensor,
                    x_t: torch.Tensor) -> torch.Tensor:
        """The class-wise appearance loss of translated source B×1×H×W (source labels B×H×W)
        against the real target, labelled where the labeller is confident; 0 before
        ``class_start``."""
        if self.step_count < self.cfg.class_start:
            return x_st.float().sum().mul(0.0).abs()
        with torch.no_grad():
            conf, y_t = self.labeller(x_t).float().softmax(1).max(1)
            y_t[conf < self.cfg.class_conf] = -1
        return losses.class_appearance_loss(x_st, y_s, x_t, y_t, self.n_classes)

    def _sem_term(self, x_st: torch.Tensor, y_s: torch.Tensor) -> torch.Tensor:
        """The semantic-consistency loss: the (frozen) labeller's Dice+CE on the translated
        source B×1×H×W against the source labels B×H×W; 0 before ``sem_start``."""
        if self.step_count < self.cfg.sem_start:
            return x_st.float().sum().mul(0.0).abs()
        return self.labeller_loss(self.labeller(x_st), y_s)

    def state_dict(self) -> dict:
        """Everything an exact resume needs, storable with ``weights_only``."""
        state = {"step": self.step_count, "model": self.model.state_dict(),
                 "dis": self.dis.state_dict(), "opt_g": self.opt_g.state_dict(),
                 "opt_d": self.opt_d.state_dict(), "scaler": self.scaler.state_dict(),
                 "noise": self.noise.get_state(), "rng": rng_state(),
                 "config": config_to_dict(self.cfg)}
        if self.labeller is not None:
            state.update(labeller=self.labeller.state_dict(), opt_l=self.opt_l.state_dict(),
                         n_classes=self.n_classes)
        if self.domain:
            state["pools"] = {d: pool.state_dict() for d, pool in self.pools.items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.dis.load_state_dict(state["dis"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.labeller is not None:
            self.labeller.load_state_dict(state["labeller"])
            self.opt_l.load_state_dict(state["opt_l"])
        if self.amp and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.domain:
            for d, pool in self.pools.items():
                pool.load_state_dict(state["pools"][d], self.device)
        self.noise.set_state(state["noise"].cpu())
        set_rng_state(state["rng"])
        self.step_count = int(state["step"])


# ----------------------------------------------------------------------------------------------
# data


def check_pair(source_dir: str | os.PathLike, target_dir: str | os.PathLike) -> dict:
    """Check two prepared folders can be a source/target pair; return what a run records.

    Raises:
        FileNotFoundError: a folder does not exist (named).
        ValueError: not a prepared folder, no ``train`` subjects, the tasks differ, or source and
            target are one folder (named).

    Two folders of the same modality are a valid pair (for example two MR scanners or sequences).
    """
    if Path(source_dir).resolve() == Path(target_dir).resolve():
        raise ValueError(f"{source_dir}: given as both --source and --target; the style model "
                         "learns the difference between two domains, so pass the prepared "
                         "folder of the other modality (or scanner) as --target")
    manifests = {}
    for role, folder in (("source", source_dir), ("target", target_dir)):
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder (the {role} prepared data)")
        manifests[role] = read_manifest(folder)
        if not list_subjects(folder, "train"):
            raise ValueError(f"{folder}: has no 'train' subjects to learn the {role} style from")
    src, tgt = manifests["source"], manifests["target"]
    if src["task"] != tgt["task"]:
        raise ValueError(f"task mismatch: {source_dir} holds {src['task']!r} but {target_dir} "
                         f"holds {tgt['task']!r}; source and target must be the same task")
    return {"task": src["task"], "classes": list(src["classes"]),
            "source_modality": src["modality"], "target_modality": tgt["modality"],
            "source_dir": str(Path(source_dir).resolve()),
            "target_dir": str(Path(target_dir).resolve()),
            "target_normalisation": tgt.get("normalisation", {})}


@torch.no_grad()
def encode_styles(model: StyleTransfer, images: torch.Tensor | SliceDataset, domain: str,
                  device: torch.device, batch_size: int = 64) -> torch.Tensor:
    """Style codes N×S (CPU, float32) of N slices (a tensor N×1×H×W or a dataset)."""
    n = len(images)
    codes = []
    for i in range(0, n, batch_size):
        if isinstance(images, torch.Tensor):
            x = images[i:i + batch_size]
        else:
            x = torch.stack([images[j]["image"] for j in range(i, min(n, i + batch_size))])
        codes.append(model.style[domain](x.to(device)).float().cpu())
    return torch.cat(codes)


# ----------------------------------------------------------------------------------------------
# sample grids


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Map [-1, 1] intensities to 0..255."""
    return (np.clip((np.asarray(x, np.float32) + 1) / 2, 0, 1) * 255).round().astype(np.uint8)


def tile(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Tile rows of N×H×W images in [-1, 1] into one uint8 image with ``pad``-pixel gaps."""
    n, h, w = rows[0].shape
    grid = np.full((len(rows) * (h + pad) - pad, n * (w + pad) - pad), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = to_uint8(img)
    return grid


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 H×W array as a PNG, atomically."""

    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path


@torch.no_grad()
def sample_grid(model: StyleTransfer | DomainTranslator, x_s: torch.Tensor, x_t: torch.Tensor,
                z_s: torch.Tensor, z_t: torch.Tensor) -> np.ndarray:
    """Rows: source; source→target with prior styles ``z_t``; source→target with the style of
    the target image below (what ``translate_folder`` does); target; target→source (``z_s``).
    For the authors' translator, which has one style per domain: source, source→target,
    target, target→source."""
    if isinstance(model, DomainTranslator):
        return tile([t[:, 0].float().cpu().numpy() for t in
                     (x_s, model.translate(x_s, to="target"), x_t,
                      model.translate(x_t, to="source"))])
    st = model.translate(x_s, to="target", style=z_t)
    st_ref = model.translate(x_s, to="target", style=x_t)
    ts = model.translate(x_t, to="source", style=z_s)
    return tile([t[:, 0].float().cpu().numpy() for t in (x_s, st, st_ref, x_t, ts)])


# ----------------------------------------------------------------------------------------------
# the loop


def _check_resume(path: Path, state: dict, config: StyleConfig, data: dict) -> None:
    check_resume(path, config_to_dict(StyleConfig.from_dict(state["config"])),
                 config_to_dict(config), _RESUMABLE)
    keys = ("task", "source_modality", "target_modality")
    if any(state["data"][k] != data[k] for k in keys):
        was = " ".join(str(state["data"][k]) for k in keys)
        raise ValueError(f"{path}: was trained on {was}, not on "
                         + " ".join(str(data[k]) for k in keys))


def train_style(source_dir: str | os.PathLike, target_dir: str | os.PathLike,
                out_dir: str | os.PathLike, config: StyleConfig,
                device: torch.device | str | None = None, progress: bool = True) -> Path:
    """Train source↔target style transfer on the ``train`` slices of two prepared folders.

    Resumes exactly if ``out_dir`` holds a checkpoint (``config.steps`` may be raised to train
    longer). Returns ``out_dir``.

    Raises:
        FileNotFoundError / ValueError: a folder is missing, not prepared, the tasks differ,
            source and target are one folder, the slice size is not ``config.image_size``, or
            ``out_dir`` was trained otherwise.
        TrainingDiverged: a loss became non-finite; the last good checkpoint is kept.
        torch.OutOfMemoryError: the device ran out of memory; the message names the batch, the
            checkpoint kept and what to do (:func:`~glua_lib.runtime.out_of_memory`).
    """

    config = config.validate()
    device = get_device() if device is None else torch.device(device)
    out_dir = Path(out_dir)
    data = check_pair(source_dir, target_dir)
    datasets = {"source": SliceDataset(source_dir, split="train"),
                "target": SliceDataset(target_dir, split="train")}
    for role, folder in (("source", source_dir), ("target", target_dir)):
        check_slice_size(folder, datasets[role].volumes[0].image.shape[1:],
                         (config.image_size,) * 2, "the config's image_size is",
                         "prepare source and target with the same --size")

    set_seed(config.seed)
    trainer = StyleTrainer(config, device, n_classes=len(data["classes"]))
    ckpt = out_dir / CHECKPOINT
    machines: list[dict] = []  # the machine of each training stretch, oldest first
    if ckpt.is_file():
        state = load_checkpoint(ckpt)
        _check_resume(ckpt, state, config, data)
        trainer.load_state_dict(state)
        machines = list(state.get("machines", []))
    start = trainer.step_count
    here = {"device": device_description(device), "torch": str(torch.__version__),
            "threads": torch.get_num_threads(), "amp": trainer.amp}
    if start < config.steps:
        was = machines[-1] if machines else None
        if was is not None and (was["device"], was["torch"]) != (here["device"], here["torch"]):
            warnings.warn(f"{ckpt}: trained up to step {start} on {was['device']} with torch "
                          f"{was['torch']}, resumed on {here['device']} with torch "
                          f"{here['torch']}; the result will differ from an uninterrupted run "
                          "(floats summed in another order)", stacklevel=2)
        elif was is not None and was.get("amp", here["amp"]) != here["amp"]:
            warnings.warn(f"{ckpt}: trained up to step {start} with amp={was['amp']}, resumed "
                          f"with amp={here['amp']}; the result will differ from an uninterrupted "
                          "run", stacklevel=2)
        machines.append({"from_step": start, **here})
    out_dir.mkdir(parents=True, exist_ok=True)
    if start < config.steps or not (out_dir / "config.json").is_file():  # that of the last stretch
        save_config(config, out_dir / "config.json")
    atomic_write_text(out_dir / "run.json",
                      json.dumps({**data, "trained_on": machines}, indent=2) + "\n")
    log_path = out_dir / LOG
    trim_log(log_path, start)

    # a fixed sample batch and fixed styles, drawn without touching the training RNG streams
    fixed = torch.Generator().manual_seed(config.seed + 1)
    show = {r: torch.stack([ds[len(ds) * (2 * k + 1) // 12]["image"] for k in range(6)])
            .to(device) for r, ds in datasets.items()}  # 6 slices spread over the volumes
    z_show = {r: torch.randn(6, config.style_dim, generator=fixed).to(device) for r in datasets}

    def save(step: int) -> None:
        state = trainer.state_dict()
        state["data"] = data
        state["machines"] = machines
        if not trainer.domain:  # the MUNIT side's k-means styles cluster these
            state["target_styles"] = encode_styles(trainer.model, datasets["target"], "target",
                                                   device)
        save_checkpoint(ckpt, state)

    def sample(step: int) -> None:
        save_png(sample_grid(trainer.model, show["source"], show["target"], z_show["source"],
                             z_show["target"]), out_dir / "samples" / f"step{step:07d}.png")

    loaders = [step_loader(datasets[r], config.batch_size, config.seed + i, start, config.steps,
                           config.num_workers, device) for i, r in enumerate(datasets)]
    bar = tqdm(total=config.steps, initial=start, desc="style transfer", unit="step",
               disable=not progress)
    t0 = time.perf_counter()
    for batch_s, batch_t in zip(*loaders):
        try:
            values = trainer.step(batch_s["image"], batch_t["image"],
                                  batch_s["label"] if trainer.labeller is not None else None)
        except TrainingDiverged as err:
            bar.close()
            raise TrainingDiverged(f"{out_dir}: {err}; {kept_checkpoint(ckpt)}. "
                                   + diverged_advice("train-style", trainer.amp, config.lr)) \
                from None
        except torch.OutOfMemoryError as err:
            bar.close()
            raise out_of_memory(
                err, out_dir, here["device"], trainer.step_count + 1,
                f"batch_size {config.batch_size} slices of {config.image_size}×"
                f"{config.image_size} per domain", kept_checkpoint(ckpt), "train-style",
                "style_cost.py") from None
        step = trainer.step_count
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            append_log(log_path, {"step": step, **{k: round(v, 6) for k, v in values.items()},
                                  ELAPSED: round(time.perf_counter() - t0, 3)})
            bar.set_postfix(g=f"{values['g_total']:.3f}", d=f"{values['d_total']:.3f}")
        if step == config.steps:
            break
        if config.sample_every and step % config.sample_every == 0:
            sample(step)
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            save(step)
    bar.close()
    if trainer.step_count > start or not ckpt.is_file():
        save(trainer.step_count)
        sample(trainer.step_count)
    return out_dir
