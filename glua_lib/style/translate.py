"""Rendering a prepared source folder in target styles: the data of the ``global`` baseline.

:func:`translate_folder` writes one volume per source volume and target style
(``<subject>_style<k>``) in the prepared format: the source labels and spacing are kept, the
modality becomes the target's, and the manifest copies the source splits and records the run.
The ``K`` target styles are the k-means centroids of the style codes of the real target training
slices (stored in the run's checkpoint), as DAR-UNet does; ``styles="random"`` draws them from the
N(0, I) prior instead.

When the style encoder gives every real target slice nearly the same code (as in every
committed `demo` run), the k-means centres coincide and the "several styles" render one image,
although the decoder does respond to the code. :func:`style_effect` measures that on one slice, next to
N(0, I) draws; :func:`translate_folder` records it in the manifest and warns
(:class:`CollapsedStylesWarning`).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glua_lib.checkpoint import load_checkpoint
from glua_lib.data.prepared import (Volume, check_slice_size, load_volume, make_manifest,
                                    read_manifest, save_volume, staged_output, write_manifest)
from glua_lib.runtime import AdviceWarning, get_device
from glua_lib.style.models import StyleTransfer, make_translator
from glua_lib.style.train import CHECKPOINT, StyleConfig


def _load(run_dir: str | os.PathLike, device: torch.device) -> tuple[StyleTransfer,
                                                                       StyleConfig, dict]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such style-transfer run folder")
    state = load_checkpoint(run_dir / CHECKPOINT)
    config = StyleConfig.from_dict(state["config"])
    model = make_translator(config)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config, state


def load_style_model(run_dir: str | os.PathLike,
                     device: torch.device | str | None = None) -> tuple[StyleTransfer,
                                                                          StyleConfig]:
    """The trained :class:`StyleTransfer` of a run folder (in eval mode on ``device``) and its
    config. Raises ``FileNotFoundError`` naming the folder or checkpoint when missing."""
    device = get_device() if device is None else torch.device(device)
    model, config, _ = _load(run_dir, device)
    return model, config


def kmeans(x: torch.Tensor, k: int, iters: int = 20, seed: int = 0) -> torch.Tensor:
    """Centroids k×S of points N×S: k-means++ start, ``iters`` Lloyd steps; sorted by cluster
    size, largest first (ties by first coordinate), so style 0 is the most common look."""
    x = x.float()
    if not 1 <= k <= len(x):
        raise ValueError(f"cannot make {k} clusters of {len(x)} style codes")
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=g)]
    while len(centres) < k:  # k-means++: next centre with probability ∝ squared distance
        d2 = torch.cdist(x, centres).min(1).values ** 2
        p = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1 / len(d2))
        centres = torch.cat([centres, x[torch.multinomial(p, 1, generator=g)]])
    for _ in range(iters):
        assign = torch.cdist(x, centres).argmin(1)
        for j in range(k):
            if (assign == j).any():
                centres[j] = x[assign == j].mean(0)
    sizes = torch.bincount(torch.cdist(x, centres).argmin(1), minlength=k)
    order = sorted(range(k), key=lambda j: (-int(sizes[j]), float(centres[j, 0])))
    return centres[order]


def target_style_codes(run_dir: str | os.PathLike) -> torch.Tensor:
    """The style codes N×S of the real target training slices, as the run's style encoder gave
    them at the end of training (stored in its checkpoint; the k-means styles cluster these)."""
    return load_checkpoint(Path(run_dir) / CHECKPOINT)["target_styles"].float()


def style_bank(state: dict, n_styles: int, styles: str = "kmeans", seed: int = 0) -> torch.Tensor:
    """The ``n_styles``×S target style codes of a run: k-means of the stored target codes, or
    ``styles="random"`` N(0, I) draws with ``seed``."""
    if n_styles < 1:
        raise ValueError(f"n_styles must be >= 1, got {n_styles}")
    if styles == "kmeans":
        return kmeans(state["target_styles"], n_styles, seed=seed)
    if styles == "random":
        s = StyleConfig.from_dict(state["config"]).style_dim
        return torch.randn(n_styles, s, generator=torch.Generator().manual_seed(seed))
    raise ValueError(f"styles must be 'kmeans' or 'random', got {styles!r}")


@torch.inference_mode()
def translate_volume(model: StyleTransfer, image: np.ndarray, style: torch.Tensor,
                     batch_size: int = 32) -> np.ndarray:
    """Translate a source volume D×H×W slice by slice with one style code S; float32 D×H×W."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(image), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(image[i:i + batch_size, None], np.float32))
        y = model.translate(x.to(device), to="target", style=style.to(device))
        out.append(y[:, 0].float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def load_style_bank(run_dir: str | os.PathLike, n_styles: int, seed: int = 0,
                    styles: str = "kmeans") -> torch.Tensor:
    """The ``n_styles``×S target style codes :func:`translate_folder` would use for a run."""
    return style_bank(load_checkpoint(Path(run_dir) / CHECKPOINT), n_styles, styles, seed)


@torch.inference_mode()
def style_walk(model: StyleTransfer, image: np.ndarray, style_a: torch.Tensor,
               style_b: torch.Tensor, n: int = 9, ts=None) -> np.ndarray:
    """Translate one source slice ``H×W`` with the styles ``(1 − t)·a + t·b`` for ``n`` values of
    ``t`` from 0 to 1 (or the given ``ts``); returns float32 ``n×H×W`` (same content throughout)."""
    if image.ndim != 2:
        raise ValueError(f"style_walk takes one H×W slice, got shape {image.shape}")
    t = (torch.linspace(0, 1, n) if ts is None else torch.as_tensor(ts, dtype=torch.float32))
    t = t.reshape(-1, 1)
    n = len(t)
    codes = (1 - t) * style_a.reshape(1, -1).cpu() + t * style_b.reshape(1, -1).cpu()
    return _render(model, image, codes)


def _render(model: StyleTransfer, image: np.ndarray, codes: torch.Tensor) -> np.ndarray:
    """One source slice ``H×W`` translated with each of the K style codes K×S: float32 K×H×W."""
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(image, np.float32))[None, None]
    x = x.expand(len(codes), 1, -1, -1).to(device)
    return model.translate(x, to="target", style=codes.to(device))[:, 0].float().cpu().numpy()


COLLAPSE_RATIO = 0.05  # styles that change a rendering < 5 % as much as prior draws count as one


@dataclass(frozen=True)
class StyleEffect:
    """How much K style codes change the rendering of one source slice, next to K draws from
    the N(0, I) prior the decoder was trained with (:func:`style_effect`)."""

    styles: float  # mean |difference| over pairs of the K codes' renderings (images in [-1, 1])
    random: float  # the same for K prior draws
    random_codes: torch.Tensor  # K×S, the prior draws

    @property
    def ratio(self) -> float:
        """``styles / random``: about 1 when the codes differ as much as prior styles do."""
        return self.styles / self.random if self.random > 0 else float("nan")

    @property
    def collapsed(self) -> bool:
        """The codes render nearly one image: ``styles`` at most :data:`COLLAPSE_RATIO` times
        ``random`` (so also when neither kind of code changes the image at all)."""
        return self.styles <= COLLAPSE_RATIO * self.random

    def walk_ends(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two target styles (S each) worth walking between: ``codes[0]`` and ``codes[1]``, or the
        first two prior draws when the codes are collapsed."""
        pair = self.random_codes if self.collapsed else codes
        return pair[0], pair[1]


def _mean_pairwise_difference(images: np.ndarray) -> float:
    """Mean absolute difference over all pairs of K images K×H×W."""
    k = len(images)
    return float(np.mean([np.abs(images[i] - images[j]).mean()
                          for i in range(k) for j in range(i + 1, k)]))


@torch.inference_mode()
def style_effect(model: StyleTransfer, image: np.ndarray, codes: torch.Tensor,
                 seed: int = 0) -> StyleEffect:
    """Render one source slice ``H×W`` with each of the K ≥ 2 style codes ``codes`` (K×S) and with
    K N(0, I) draws (``seed``); the mean absolute difference between renderings, per kind.

    The decoder is trained on prior draws, so ``random`` shows how much the code *can* change an
    image; ``styles`` far below it means the codes are one style (a collapsed style encoder).
    """
    if image.ndim != 2:
        raise ValueError(f"style_effect takes one H×W slice, got shape {image.shape}")
    codes = torch.as_tensor(codes, dtype=torch.float32).cpu()
    if codes.ndim != 2 or len(codes) < 2:
        raise ValueError(f"style_effect needs K >= 2 style codes K×S, got shape "
                         f"{tuple(codes.shape)}")
    drawn = torch.randn(codes.shape, generator=torch.Generator().manual_seed(seed))
    return StyleEffect(_mean_pairwise_difference(_render(model, image, codes)),
                       _mean_pairwise_difference(_render(model, image, drawn)), drawn)


class CollapsedStylesWarning(AdviceWarning):
    """:func:`translate_folder` rendered K k-means styles that are nearly one style."""


def busiest_slice(volume: Volume) -> np.ndarray:
    """The slice H×W with the most labelled foreground (the middle one if there is none)."""
    area = (volume.label > 0).reshape(len(volume.label), -1).sum(1)
    return volume.image[int(area.argmax()) if area.any() else len(area) // 2]


def volume_style_effect(model: StyleTransfer, volume: Volume, codes: torch.Tensor,
                        seed: int = 0) -> StyleEffect:
    """:func:`style_effect` on the :func:`busiest_slice` of ``volume`` with the prior draws seeded
    ``seed + 1`` (``seed`` seeds the styles): what :func:`translate_folder` records for the first
    source subject."""
    return style_effect(model, busiest_slice(volume), codes, seed=seed + 1)


def translate_folder(run_dir: str | os.PathLike, source_dir: str | os.PathLike,
                     out_dir: str | os.PathLike, n_styles: int = 3,
                     device: torch.device | str | None = None, seed: int = 0,
                     overwrite: bool = False, progress: bool = True, *,
                     styles: str = "kmeans") -> Path:
    """Write every volume of ``source_dir`` in ``n_styles`` target styles to ``out_dir``.

    Output subjects are ``<subject>_style<k>`` with the source label, spacing and split; the
    modality is the run's target modality. ``styles="kmeans"`` (default) clusters the real
    target style codes; ``"random"`` draws from N(0, I). ``seed`` seeds either. A run of the
    authors' translator (``arch="domain"``) has one rendering per domain, so it writes one volume
    per source volume (``_style0``) whatever ``n_styles`` asks. Returns ``out_dir`` (resolved).

    With ``n_styles`` ≥ 2, :func:`style_effect` on the busiest slice of the first source subject
    goes into the manifest (``style_transfer.style_effect``); k-means styles that render nearly
    one image (the style encoder collapsed) raise a :class:`CollapsedStylesWarning` that says
    what to do instead.

    Raises:
        FileNotFoundError: the run folder, its checkpoint or ``source_dir`` is missing.
        FileExistsError: ``out_dir`` is not empty and ``overwrite`` is false.
        ValueError: ``source_dir`` is not the run's source task/modality, or its slices are not
            the size the run was trained on (named; nothing is written).
    """
    from tqdm.auto import tqdm

    device = get_device() if device is None else torch.device(device)
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise FileNotFoundError(f"{source_dir}: no such folder (the source prepared data)")
    model, config, state = _load(run_dir, device)
    data = state["data"]
    manifest = read_manifest(source_dir)
    if (manifest["task"], manifest["modality"]) != (data["task"], data["source_modality"]):
        raise ValueError(
            f"{source_dir}: holds {manifest['task']} {manifest['modality']} but the run "
            f"{run_dir} translates {data['task']} {data['source_modality']} -> "
            f"{data['target_modality']}")
    if config.arch == "domain":  # one rendering: the style is the target domain's label
        n_styles, styles = 1, "domain"
        codes = model.code("target", torch.zeros(1))
    else:
        codes = style_bank(state, n_styles, styles, seed)
    subjects = sorted(manifest["subjects"])
    splits, origin, effect = {}, {}, None
    with staged_output(out_dir, overwrite=overwrite) as stage:
        bar = tqdm(total=len(subjects) * n_styles, desc="translate", unit="vol",
                   disable=not progress)
        for subject in subjects:
            file = source_dir / manifest["subjects"][subject]["file"]
            vol = load_volume(file)
            check_slice_size(file, vol.image.shape[1:], (config.image_size,) * 2,
                             f"the style run {run_dir} was trained on",
                             f"prepare this folder with --size {config.image_size}")
            if effect is None and n_styles >= 2:
                effect = volume_style_effect(model, vol, codes, seed)
                if styles == "kmeans" and effect.collapsed:
                    warnings.warn(
                        f"{run_dir}: the {n_styles} k-means target styles render nearly one image "
                        f"(on a slice of {subject} they differ by {effect.styles:.2g} in mean "
                        f"absolute intensity, {n_styles} N(0, I) styles by {effect.random:.2g}): "
                        f"the style encoder gives the real target slices nearly one code, so the "
                        f"{n_styles} copies of each volume are near duplicates. `python -m "
                        f"glua_lib translate --random-styles` or `train-seg --random-styles` "
                        f"(styles='random') renders varied styles instead, and translate "
                        f"--styles 1 one copy.",
                        CollapsedStylesWarning, stacklevel=2)
            for k, code in enumerate(codes):
                name = f"{subject}_style{k}"
                image = translate_volume(model, vol.image, code)
                save_volume(stage / f"{name}.npz",
                            Volume(image, vol.label, vol.spacing, data["target_modality"],
                                   vol.task, name))
                splits[name] = manifest["subjects"][subject]["split"]
                origin[name] = subject
                bar.update(1)
        bar.close()
        write_manifest(stage, make_manifest(
            dataset=f"{manifest.get('dataset', 'prepared')}-translated", task=data["task"],
            modality=data["target_modality"],
            normalisation={"method": "style_transfer", "range": [-1.0, 1.0],
                           "like": data.get("target_normalisation", {})},
            splits=splits,
            command=f"translate_folder({str(run_dir)!r}, {str(source_dir)!r}, "
                    f"n_styles={n_styles}, seed={seed}, styles={styles!r})",
            extra={"style_transfer": {
                "run": str(Path(run_dir).resolve()), "step": int(state["step"]),
                "source_dir": str(source_dir.resolve()),
                "source_modality": data["source_modality"],
                "target_dir": data["target_dir"], "styles": styles, "n_styles": n_styles,
                "seed": seed, "style_codes": codes.tolist(), "source_subject": origin,
                "style_effect": None if effect is None else {
                    "styles": effect.styles, "random": effect.random, "ratio": effect.ratio,
                    "collapsed": effect.collapsed}}}))
    return Path(out_dir).resolve()
