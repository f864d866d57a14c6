"""Profiles (``demo`` / ``gpu16`` / ``full``), the cache folder, and saving configs next to outputs.

A *profile* is one frozen dataclass that fixes every size and step count the chapters use, so that
the same notebook runs in minutes on a laptop CPU (``demo``), within an hour a chapter on a 16 GB
GPU such as Colab's T4 (``gpu16``), or at paper scale on a large GPU (``full``). It is chosen by
device unless the environment variable ``GLUA_PROFILE`` names one (:func:`choose_profile`); its
batch size can be lowered for a smaller GPU (:func:`get_profile`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from glua_lib.io import atomic_write_text

PROFILE_ENV = "GLUA_PROFILE"
CACHE_ENV = "GLUA_CACHE"


@dataclass(frozen=True)
class Profile:
    """Every size and budget that differs between a CPU demo and a GPU run."""

    name: str  # "demo" (CPU, minutes), "gpu16" (16 GB GPU, an hour a chapter), "full" (paper)
    slice_size: int  # in-plane size H = W of the 2D slices the networks see (paper: 256)
    n_slices: int  # slices D per synthetic phantom volume
    n_train: int  # phantom subjects per domain used for training (source and target are disjoint)
    n_test: int  # phantom subjects per domain held out for 3D evaluation
    batch_size: int  # 2D slices per segmenter step (per domain for methods that see the target)
    style_steps: int  # optimisation steps of the global (style-transfer) model
    seg_steps: int  # optimisation steps of each segmenter (fixed budget, no target-label selection)
    n_styles: int  # target styles rendered per source image by the global model
    seeds: tuple[int, ...]  # seeds over which tables report mean (std)
    num_workers: int  # DataLoader worker processes
    amp: bool  # mixed precision (only takes effect on CUDA)
    style_batch: int = 0  # slices per domain per style-model step (0: batch_size)
    style_size: str = "paper"  # style model's widths: a key of glua_lib.style.train.STYLE_SIZES
    seg_size: str = "paper"  # segmenter's widths: a key of glua_lib.seg.train.SEG_SIZES
    progress: bool = True  # training progress bars by default (long GPU runs; not the CPU demo)
    gap_target: float = 0.85  # share of the no-adaptation → oracle gap the book asks glua to close
    style_arch: str = "domain"  # the translator: a key of glua_lib.style.train.STYLE_ARCHS

    def __post_init__(self) -> None:
        if self.style_batch == 0:  # frozen: set the default through object.__setattr__
            object.__setattr__(self, "style_batch", self.batch_size)


# The CPU demo: the style model sees 1200 steps of 4 slices a domain (a short GAN run gains more
# from updates than from batch size; 900 was tried for issue 26 and given back: about a minute
# of `make test` on a slow CPU for 3 points of `global`, benchmarks/RESULTS.md "Back to 1200
# style steps"), small widths (STYLE_SIZES["small"], SEG_SIZES["small"]).
# Five seeds and eight test subjects a domain, so that paired differences between methods have
# intervals narrow enough to tell (a phantom costs 0.02 s; the training subjects do not change).
DEMO = Profile(
    name="demo", slice_size=64, n_slices=32, n_train=6, n_test=8, batch_size=8,
    style_steps=1200, seg_steps=600, n_styles=3, seeds=(0, 1, 2, 3, 4), num_workers=0, amp=False,
    style_batch=4, style_size="small", seg_size="small", progress=False, gap_target=0.80,
)
# A 16 GB GPU (T4, V100-16G, L4; Colab's free GPU): 256² slices in mixed precision, a style model
# of half the paper's width, budgets sized so that a chapter trains in about an hour on a T4 and
# a task, direction and seed costs a fraction of SIFA's schedule (benchmarks/flops.py).
GPU16 = Profile(
    name="gpu16", slice_size=256, n_slices=96, n_train=16, n_test=4, batch_size=8,
    style_steps=8000, seg_steps=3000, n_styles=5, seeds=(0, 1, 2), num_workers=2, amp=True,
    style_batch=4, style_size="medium", seg_size="paper",
)
# Paper scale (MUNIT / DAR-UNet widths and batches), for GPUs of 40 GB and more.
FULL = Profile(
    name="full", slice_size=256, n_slices=96, n_train=16, n_test=4, batch_size=16,
    style_steps=50_000, seg_steps=20_000, n_styles=5, seeds=(0, 1, 2), num_workers=4, amp=True,
)
PROFILES: dict[str, Profile] = {p.name: p for p in (DEMO, GPU16, FULL)}
LARGE_GPU_GIB = 40  # a CUDA device with at least this much memory gets "full", a smaller one "gpu16"


def gpu_memory_gib(device: Any) -> float | None:
    """Total memory of a CUDA ``device`` in GiB; ``None`` for another device or where CUDA is
    not available."""
    if str(getattr(device, "type", device)).split(":")[0] != "cuda" or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(torch.device(device)).total_memory / 2**30


def choose_profile(device: Any = None, memory_gib: float | None = None) -> str:
    """The profile a device gets by default: ``demo`` on a CPU or Apple MPS; on CUDA ``gpu16``
    below :data:`LARGE_GPU_GIB` of memory (Colab's T4 has 15 GiB) and ``full`` from there on.

    ``memory_gib``: the GPU's memory (``None``: asked of the device; a CUDA device whose memory
    cannot be asked gets ``gpu16``, the profile that fits more GPUs)."""
    kind = str(getattr(device, "type", device)).split(":")[0] if device is not None else None
    if kind != "cuda":
        return "demo"
    memory = gpu_memory_gib(device) if memory_gib is None else memory_gib
    return "full" if memory is not None and memory >= LARGE_GPU_GIB else "gpu16"


def get_profile(name: str | None = None, device: Any = None,
                batch_size: int | None = None, budget: float | None = None) -> Profile:
    """Return the profile named ``name``, else ``$GLUA_PROFILE``, else one chosen by device.

    Chosen by device (:func:`choose_profile`): ``demo`` on a CPU or Apple MPS, ``gpu16`` on a
    GPU with less than 40 GB, ``full`` on a larger one. ``batch_size`` (``None``: the
    profile's) replaces the profile's slices per step (and the style model's in proportion),
    for a GPU with less memory than the profile needs. The batch size is part of every run's config, so the
    chapters train (and cache) such runs in folders of their own.

    ``budget`` (``None``: 1) scales the profile's training steps, ``style_steps`` and
    ``seg_steps`` (rounded, at least 1 each), and nothing else: a smoke test of a chapter (as
    MONAI's tutorials run with ``max_epochs=1`` in CI) injects, e.g., ``budget=0.05``. The steps
    are part of every run's config, so such runs are cached in folders of their own; their
    figures are not the profile's (:func:`budget_of` tells a profile's budget back).

    Raises:
        ValueError: the name (argument or environment) is not a known profile, ``batch_size``
            is not a positive integer, or ``budget`` is not a positive number.
    """
    chosen = name or os.environ.get(PROFILE_ENV, "").strip() or None
    if chosen is None:
        chosen = choose_profile(device)
    try:
        profile = PROFILES[chosen.lower()]
    except KeyError:
        src = f"${PROFILE_ENV}" if name is None else "the profile argument"
        raise ValueError(
            f"unknown profile {chosen!r} (from {src}); choose one of {sorted(PROFILES)}"
        ) from None
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer (slices per step) or None "
                             f"for the profile's {profile.batch_size}, got {batch_size!r}")
        if batch_size != profile.batch_size:  # the style model's batch in proportion
            profile = dataclasses.replace(profile, batch_size=batch_size, style_batch=max(
                1, round(profile.style_batch * batch_size / profile.batch_size)))
    if budget is not None:
        if (isinstance(budget, bool) or not isinstance(budget, (int, float))
                or not math.isfinite(budget) or budget <= 0):
            raise ValueError(f"budget must be a positive number (a fraction of the profile's "
                             f"training steps) or None for all of them, got {budget!r}")
        if budget != 1:
            profile = dataclasses.replace(
                profile, style_steps=max(1, round(profile.style_steps * budget)),
                seg_steps=max(1, round(profile.seg_steps * budget)))
    return profile


def budget_of(profile: Profile) -> float | None:
    """The fraction of its named profile's segmenter steps ``profile`` trains for (1.0 for a
    profile as :data:`PROFILES` holds it; see :func:`get_profile`'s ``budget``), or ``None`` for
    a profile of another name."""
    named = PROFILES.get(profile.name)
    return None if named is None else profile.seg_steps / named.seg_steps


def cache_dir(create: bool = True) -> Path:
    """The one folder for artifacts shared by chapters (data, checkpoints, results).

    ``$GLUA_CACHE`` if set, else ``$XDG_CACHE_HOME/glua-book``, else ``~/.cache/glua-book``.
    Created on first use, never at import.
    """
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
        path = Path(base).expanduser() / "glua-book"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def config_to_dict(cfg: Any) -> dict:
    """A dataclass (possibly nested) as a JSON-ready dict; tuples become lists."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"expected a dataclass instance, got {type(cfg).__name__}")
    return {"_type": type(cfg).__name__, **dataclasses.asdict(cfg)}


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write a dataclass config as JSON (atomically) so every output records what made it."""
    path = Path(path)
    atomic_write_text(path, json.dumps(config_to_dict(cfg), indent=2, sort_keys=True) + "\n")
    return path


def load_config(cls: type, path: str | os.PathLike):
    """Read a config written by :func:`save_config` back into dataclass ``cls`` (through
    ``cls.from_dict`` where it has one, which fills fields the file predates).

    Raises:
        ValueError: the file holds another config type or fields ``cls`` does not have.
    """
    path = Path(path)
    data = json.loads(path.read_text())
    kind = data.pop("_type", cls.__name__)
    if kind != cls.__name__:
        raise ValueError(f"{path}: holds a {kind} config, not a {cls.__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise ValueError(f"{path}: fields {sorted(unknown)} are not in {cls.__name__}")
    for key, value in data.items():
        if isinstance(value, list) and "tuple" in str(names[key].type):
            data[key] = tuple(value)
    # a config class with from_dict knows the values of fields added after older files
    return cls.from_dict(data) if hasattr(cls, "from_dict") else cls(**data)
