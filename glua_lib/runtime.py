"""Device, seeding and the environment report every chapter prints."""
from __future__ import annotations

import os
import platform
import random
import subprocess
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from glua_lib.config import (PROFILE_ENV, PROFILES, Profile, budget_of, cache_dir, choose_profile,
                             get_profile)

_REPORTED = ("glua-book", "torch", "numpy", "scipy", "monai", "nibabel", "pydicom", "matplotlib",
             "ipywidgets")


class AdviceWarning(UserWarning):
    """A warning whose message is advice to whoever ran the command: ``python -m glua_lib``
    prints it as one plain ``warning: ...`` line; in Python it is an ordinary warning."""


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU.

    ``prefer`` (for example ``"cpu"`` or ``"cuda:1"``) forces a device; asking for one that is not
    available raises ``RuntimeError`` rather than silently running elsewhere. The result is passed
    explicitly to every model and tensor; the library never calls ``.cuda()``.
    """
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} requested but CUDA is not available here")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise RuntimeError(f"device {prefer!r} requested but this machine has "
                               f"{torch.cuda.device_count()} GPU(s): cuda:0 … "
                               f"cuda:{torch.cuda.device_count() - 1}")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {prefer!r} requested but Apple MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


#: Device types on which a config's ``amp=True`` turns mixed precision on. float16 autocast with
#: a loss scaler pays off on CUDA; on a CPU it is slower than float32. The tests add ``"cpu"``
#: to run the GPU's code path (autocast, scaler, its checkpointed state) without a GPU.
AMP_DEVICE_TYPES: tuple[str, ...] = ("cuda",)


def amp_enabled(requested: bool, device: torch.device | str) -> bool:
    """Whether mixed precision is used: ``requested`` (a config's ``amp``) on a device whose type
    is in :data:`AMP_DEVICE_TYPES`. Every trainer, :func:`autocast` and its
    ``torch.amp.GradScaler(device.type, enabled=...)`` take this one answer."""
    return bool(requested) and torch.device(device).type in AMP_DEVICE_TYPES


def autocast(device: torch.device | str, enabled: bool):
    """float16 autocast on ``device`` when ``enabled`` (the precision CUDA AMP uses), else a
    context that changes nothing. Losses cast their inputs to float32 themselves."""
    return torch.autocast(torch.device(device).type, dtype=torch.float16, enabled=enabled)


def set_seed(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a torch ``Generator`` for DataLoaders.

    With ``deterministic=True`` cuDNN autotuning is off and torch uses deterministic kernels where
    they exist (slower on GPU), warning where they do not: on CUDA, reruns are then closer but
    not bit-identical (cross-entropy on B×K×H×W, adaptive average pooling and reflection padding
    have no deterministic backward there, by torch's list). torch's setting is global: it stays
    on for the rest of the process (``torch.use_deterministic_algorithms(False)`` turns it off).
    Pair the returned generator with :func:`seed_worker` so DataLoader workers are seeded too::

        g = set_seed(0)
        DataLoader(ds, shuffle=True, generator=g, worker_init_fn=seed_worker)
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoaders: derive NumPy and Python seeds from torch's worker seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def code_version() -> str:
    """The git commit of the checkout this ``glua_lib`` was imported from, with
    ``+uncommitted`` if tracked files were changed; ``"unknown"`` outside a git checkout (e.g. an
    installed wheel). Results files record it next to their numbers."""
    repo = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, cwd=repo).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, cwd=repo).stdout.strip()
        return rev + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name() -> str:
    """The CPU's model name and its widest vector extension (what sets the speed class)."""
    name, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name in ("", platform.machine()):
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags.split() else "AVX2" if "avx2" in flags.split() else ""
    return f"{name}, {isa}" if isa else name


def device_description(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H100 …)`` or ``cpu (x86_64, 2 threads)``: what a timing was taken on."""
    if device.type == "cuda":  # "cuda" and "cuda:0" are the same GPU: always name the index
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    cpu = platform.processor() or platform.machine()
    return f"{device} ({cpu}, {torch.get_num_threads()} threads)"


def diverged_advice(command: str, amp: bool, lr: float) -> str:
    """What to do after a non-finite loss, the end of a trainer's error message.

    ``command`` is the command line (``train-style``, ``train-seg``), ``amp`` whether the stretch
    that diverged trained in mixed precision, ``lr`` its learning rate. float16 overflow is the
    cheap suspect and can be fixed in place: a run resumes with another ``amp`` setting (each
    stretch's is recorded in ``run.json``). A learning rate is part of a run's config, so a lower
    one starts a new run.
    """
    lower = (f"start over in a new run folder with a lower learning rate ({command} --lr, "
             f"below {lr:g}; lr= in Python)")
    if amp:
        return (f"It trained in mixed precision (float16): rerun {command} with --no-amp "
                f"(amp=False in Python) on the same folder to resume from that checkpoint in "
                f"float32; if it diverges again, {lower}.")
    return lower[0].upper() + lower[1:] + "."


def out_of_memory(err: BaseException, run: str | os.PathLike, device: str, step: int,
                  batch: str, kept: str, command: str, cost_script: str) -> torch.OutOfMemoryError:
    """The error a trainer raises in place of the device's out-of-memory error ``err``.

    It names the run folder, the device, the step that failed, the ``batch`` (e.g. ``"batch_size
    16 slices of 256×256 per domain"``), what was ``kept`` (:func:`~glua_lib.checkpoint.
    kept_checkpoint`), and how to lower the batch: a chapter's ``batch_size`` parameter, or
    ``command --batch-size``; the measured costs are printed by ``benchmarks/cost_script``.
    """
    said = str(err).splitlines()[0] if str(err) else "nothing"
    return torch.OutOfMemoryError(
        f"{run}: out of memory on {device} at step {step}, with {batch} (measured costs: "
        f"benchmarks/{cost_script} --batch-size); {kept}. Lower the batch size: in a chapter, its "
        f"batch_size parameter (the chapter then trains into a new cache folder); on the command "
        f"line, {command} --batch-size into a new run folder (a run resumes only with its own "
        "config). Or use the demo profile. In Jupyter, restart the kernel first to free the "
        f"memory. The device said: {said}")


def config_report(profile: Profile | None = None, seed: int | None = None,
                  device: torch.device | None = None) -> dict[str, str]:
    """The facts :func:`print_config` prints, as a dict (testable, loggable)."""
    device = device if device is not None else get_device()
    profile = profile if profile is not None else get_profile(device=device)
    report = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    report.update({name: _version(name) for name in _REPORTED})
    report["device"] = str(device)
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    report["torch threads"] = str(torch.get_num_threads())
    report["seed"] = "not set" if seed is None else str(seed)
    report["profile"] = profile.name
    env = os.environ.get(PROFILE_ENV, "").strip().lower()
    by_device = choose_profile(device)
    report["profile source"] = (f"${PROFILE_ENV}" if env and env == profile.name else
                                "chosen by device" if not env and by_device == profile.name else
                                "given (a chapter's profile parameter or an argument)")
    named = PROFILES.get(profile.name)
    report["batch size"] = str(profile.batch_size) + (
        f" (set; the {profile.name} profile's is {named.batch_size})"
        if named is not None and named.batch_size != profile.batch_size else "")
    budget = budget_of(profile)
    report["training steps"] = f"style {profile.style_steps}, segmenter {profile.seg_steps}" + (
        f" (budget {budget:.3g} of the {profile.name} profile's: smoke-test figures, not the "
        "profile's)" if budget not in (None, 1) else "")
    report["cache"] = str(cache_dir(create=False))
    return report


VERSIONS = ("python", "platform", *_REPORTED)  # the entries of config_report that are versions


def print_config(profile: Profile | None = None, seed: int | None = None,
                 device: torch.device | None = None) -> None:
    """Print what a chapter's run depends on (profile, device, seed, batch, steps, cache), one
    fact a line, then the package versions folded into a few lines (the chapters' first cell)."""
    report = config_report(profile=profile, seed=seed, device=device)
    facts = {k: v for k, v in report.items() if k not in VERSIONS}
    width = max(map(len, facts))
    for key, value in facts.items():
        print(f"{key:<{width}} : {value}")
    versions = ", ".join(f"{k} {report[k]}" for k in VERSIONS if k != "platform")
    print(textwrap.fill(f"versions: {versions} ({report['platform']})", 96,
                        subsequent_indent="  "))
