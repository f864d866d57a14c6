"""Is the mask right? The local feature mask against the phantoms' known gap map.

The synthetic phantoms store, per voxel, the *true* local domain gap (``gap`` in each ``.npz``;
:func:`data_prep.phantom.gap_map`). A good mask puts its weight where that gap is large.

**Comparison at feature resolution.** A mask lives on the ``h×w`` grid of its encoder level
(``H/2^l × W/2^l``); the gap map is pooled down to that grid by averaging each ``2^l × 2^l``
cell (:func:`pool_to`), so every mask location is compared with the mean true gap of the pixels
it sits on. (``at="image"`` instead enlarges the mask to ``H×W`` by nearest neighbour and compares
pixel by pixel.) The *high-gap region* is where the (pooled) gap exceeds a ``threshold``, by
default the ``quantile`` (0.8) of the pooled gap over all locations of the batch. The score is the
**ROC AUC** of the mask as a detector of that region (:func:`roc_auc`, the Mann–Whitney U
statistic with average ranks for ties): 1 = every high-gap location has a larger mask value than
every other location, 0.5 = no better than chance, 0 = exactly reversed.

Functions to look at a trained run: :func:`target_slices` (target slices with their gap maps and
labels), :func:`compute_masks` (``P(source)``, the gap score and the mask per watched level, from
the run's latest checkpoint or a training snapshot), :func:`mask_auc_over_training` (the AUC at
every snapshot and at the end) and :func:`class_mean_mask` (mean mask per class).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from glua_lib.checkpoint import load_checkpoint
from glua_lib.data import list_subjects, load_extra, load_volume
from glua_lib.local.discriminator import FeatureDiscriminator
from glua_lib.local.mask import gap_score, local_mask, resize_mask, source_probability
from glua_lib.seg.unet import UNet


# ---------------------------------------------------------------------------------------------
# AUC and the mask-vs-gap score


def roc_auc(scores, labels) -> float:
    """ROC AUC of ``scores`` for binary ``labels`` (any shapes, flattened), by ranks.

    ``AUC = (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋)`` where ``R₊`` is the sum of the positives' ranks
    among all scores (1-based, ties get their average rank) — the Mann–Whitney U of the
    positives divided by ``n₊ n₋``, i.e. the probability that a random positive scores higher
    than a random negative (ties count ½). ``nan`` when either class is empty.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # average rank of each run of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 … end
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _as_maps(mask) -> np.ndarray:
    """``B×1×h×w``, ``B×h×w`` or ``h×w`` → ``B×h×w``."""
    m = _numpy(mask)
    if m.ndim == 4:
        if m.shape[1] != 1:
            raise ValueError(f"mask must be B×1×h×w, got shape {m.shape}")
        m = m[:, 0]
    elif m.ndim == 2:
        m = m[None]
    elif m.ndim != 3:
        raise ValueError(f"mask must be B×1×h×w, B×h×w or h×w, got shape {m.shape}")
    return m


def pool_to(gap_map, size: tuple[int, int]) -> np.ndarray:
    """Average-pool ``B×H×W`` (or ``H×W``) maps to ``B×h×w``: each output location is the mean
    of its cell (``H/h × W/w`` pixels when divisible, else adaptive average pooling)."""
    g = _as_maps(gap_map)
    h, w = (int(s) for s in size)
    b, big_h, big_w = g.shape
    if (big_h, big_w) == (h, w):
        return g
    if big_h % h == 0 and big_w % w == 0:
        return g.reshape(b, h, big_h // h, w, big_w // w).mean(axis=(2, 4))
    t = torch.from_numpy(np.ascontiguousarray(g))[:, None]
    return torch.nn.functional.adaptive_avg_pool2d(t, (h, w))[:, 0].numpy()


def high_gap(gap, quantile: float = 0.8, threshold: float | None = None) -> np.ndarray:
    """Boolean map of the high-gap region: ``gap > threshold`` (default: the ``quantile`` of
    ``gap`` over all its values). When ties at the top leave nothing above a quantile threshold,
    ``gap >= threshold`` is used instead."""
    g = np.asarray(gap, dtype=np.float64)
    if threshold is None:
        if not 0 <= quantile < 1:
            raise ValueError(f"quantile must be in [0, 1), got {quantile}")
        threshold = float(np.quantile(g, quantile))
        high = g > threshold
        return high if high.any() else g >= threshold
    return g > threshold


def mask_gap_auc(mask, gap_map, quantile: float = 0.8, threshold: float | None = None,
                 at: str = "feature") -> float:
    """ROC AUC of the mask against the high-gap region (module docstring).

    Args:
        mask: ``B×1×h×w`` (or ``B×h×w``, ``h×w``) mask values (tensor or array); any score
            works (the gap score, ``1 − P(source)``, …).
        gap_map: the matching true gap maps ``B×H×W`` (or ``H×W``).
        quantile / threshold: the high-gap region is ``gap > threshold``, by default the
            ``quantile`` of the (pooled) gap over the batch (:func:`high_gap`).
        at: ``"feature"`` (pool the gap map to the mask's grid; default) or ``"image"``
            (enlarge the mask to the gap map's grid, nearest neighbour).

    Returns:
        The AUC in ``[0, 1]`` (``nan`` if the region is empty or everything).
    """
    m = _as_maps(mask)
    g = _as_maps(gap_map)
    if m.shape[0] != g.shape[0]:
        raise ValueError(f"{m.shape[0]} masks but {g.shape[0]} gap maps")
    if at == "feature":
        g = pool_to(g, m.shape[-2:])
    elif at == "image":
        t = torch.from_numpy(np.ascontiguousarray(m))[:, None]
        m = resize_mask(t, g.shape[-2:])[:, 0].numpy()
    else:
        raise ValueError(f"at must be 'feature' or 'image', got {at!r}")
    return roc_auc(m, high_gap(g, quantile, threshold))


def mask_gap_auc_interval(mask, gap_map, quantile: float = 0.8, n_boot: int = 200,
                          seed: int = 0, level: float = 0.95) -> tuple[float, float, float, str]:
    """:func:`mask_gap_auc` with a bootstrap interval over whole slices, and a verdict.

    Neighbouring locations of one slice are not independent, so slices (the batch axis of
    ``mask`` ``B×…`` and ``gap_map`` ``B×H×W``) are resampled with replacement ``n_boot`` times.

    Returns:
        ``(auc, low, high, verdict)``: the verdict is ``"above chance"`` when the whole interval
        is above ½, ``"below chance"`` when it is below, else ``"not distinguishable from chance"``.
    """
    m, g = _as_maps(mask), _as_maps(gap_map)
    auc = mask_gap_auc(m, g, quantile)
    rng = np.random.default_rng(seed)
    boot = [mask_gap_auc(m[idx], g[idx], quantile)
            for idx in (rng.integers(0, len(m), len(m)) for _ in range(n_boot))]
    tail = 100 * (1 - level) / 2
    low, high = (float(v) for v in np.nanpercentile(boot, [tail, 100 - tail]))
    verdict = ("above chance" if low > 0.5 else "below chance" if high < 0.5
               else "not distinguishable from chance")
    return float(auc), low, high, verdict


def class_mean_mask(mask, label, n_classes: int) -> np.ndarray:
    """Mean mask value per class (``n_classes`` floats, ``nan`` for absent classes): the mask is
    enlarged to the label's ``H×W`` (nearest neighbour) and averaged over each class's pixels.

    ``mask``: ``B×1×h×w``; ``label``: ``B×H×W`` class indices.
    """
    lab = np.asarray(label)
    if lab.ndim == 2:
        lab = lab[None]
    t = torch.from_numpy(np.ascontiguousarray(_as_maps(mask)))[:, None]
    m = resize_mask(t, lab.shape[-2:])[:, 0].numpy()
    return np.array([m[lab == c].mean() if (lab == c).any() else np.nan
                     for c in range(n_classes)])


# ---------------------------------------------------------------------------------------------
# masks of a trained run


def target_slices(target_dir: str | os.PathLike, split: str = "test", n: int = 8,
                  context: int = 0, subjects: Sequence[str] | None = None,
                  foreground_only: bool = True) -> dict:
    """``n`` evenly spaced target slices with their true gap maps and labels (for overlays).

    Slices are taken from the subjects of ``split`` (or ``subjects``) in order, restricted to
    slices that contain some foreground when ``foreground_only``. Returns a dict: ``image``
    float32 tensor ``n×(2·context+1)×H×W`` (neighbours as channels, as in training), ``gap``
    float32 ``n×H×W``, ``label`` uint8 ``n×H×W``, ``subject`` and ``slice`` lists.
    The folder must carry ``gap`` maps (the phantoms do).
    """
    target_dir = Path(target_dir)
    names = list(subjects) if subjects is not None else list_subjects(target_dir, split)
    if not names:
        raise ValueError(f"{target_dir}: no subjects in split {split!r}")
    candidates = []
    vols = {}
    for name in names:
        path = target_dir / f"{name}.npz"
        vol = load_volume(path)
        vols[name] = (vol, load_extra(path, "gap"))
        candidates += [(name, z) for z in range(len(vol.image))
                       if not foreground_only or vol.label[z].any()]
    if not candidates:
        raise ValueError(f"{target_dir}: no slices with foreground in {names}")
    pick = np.unique(np.linspace(0, len(candidates) - 1, min(n, len(candidates))).round()
                     .astype(int))
    images, gaps, labels, subj, zs = [], [], [], [], []
    for i in pick:
        name, z = candidates[i]
        vol, gap = vols[name]
        idx = np.clip(np.arange(z - context, z + context + 1), 0, len(vol.image) - 1)
        images.append(vol.image[idx])
        gaps.append(gap[z])
        labels.append(vol.label[z])
        subj.append(name)
        zs.append(int(z))
    return {"image": torch.from_numpy(np.stack(images).astype(np.float32)),
            "gap": np.stack(gaps).astype(np.float32), "label": np.stack(labels),
            "subject": subj, "slice": zs}


@dataclass
class LocalMaps:
    """One encoder level's maps for a batch, each ``B×1×h×w`` float32 arrays."""

    level: int
    prob: np.ndarray  # P(source) from the feature discriminator
    score: np.ndarray  # the local gap score g (LocalConfig.score)
    mask: np.ndarray  # the local feature mask M (as the masked method computes it)


def _run_parts(run_dir: Path, device: torch.device):
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path}: not a segmenter run folder")
    info = json.loads(info_path.read_text())
    ckpt = load_checkpoint(run_dir / "checkpoint.pt", map_location=device)
    hook = ckpt.get("hook") or {}
    if "local_config" not in hook:
        raise ValueError(f"{run_dir / 'checkpoint.pt'}: not a local-alignment run (method "
                         f"{info.get('method')!r} has no feature discriminator)")
    return info, ckpt, hook


def snapshot_steps(run_dir: str | os.PathLike) -> list[int]:
    """Steps at which the run has (encoder, discriminator) states: its snapshots and the step of
    its latest checkpoint (the end, for a finished run)."""
    _, ckpt, hook = _run_parts(Path(run_dir), torch.device("cpu"))
    return sorted({int(s["step"]) for s in hook["snapshots"]} | {int(ckpt["step"])})


def load_local_run(run_dir: str | os.PathLike, step: int | None = None,
                   device: torch.device | str = "cpu"):
    """The segmenter, the feature discriminator and the ``LocalConfig`` of a local-alignment run.

    ``step=None``: the latest checkpoint (the end of a finished run); otherwise a step of
    :func:`snapshot_steps`, whose encoder levels ``0 … max(levels)`` come from the snapshot (the
    decoder is the latest one; it plays no part in the masks). Both nets are in eval mode.
    """
    from glua_lib.local.methods import LocalConfig

    run_dir, device = Path(run_dir), torch.device(device)
    info, ckpt, hook = _run_parts(run_dir, device)
    local = LocalConfig.from_dict(hook["local_config"])
    model = UNet(**info["model"]).to(device)
    model.load_state_dict(ckpt["model"])
    disc = FeatureDiscriminator(hook["disc_config"]["in_channels"],
                                hook["disc_config"]["width"]).to(device)
    disc.load_state_dict(hook["disc"])
    if step is not None and step != int(ckpt["step"]):
        snaps = {int(s["step"]): s for s in hook["snapshots"]}
        if step not in snaps:
            raise ValueError(f"{run_dir}: no snapshot at step {step}; steps with one: "
                             f"{snapshot_steps(run_dir)}")
        result = model.load_state_dict(snaps[step]["encoder"], strict=False)
        if result.unexpected_keys:
            raise ValueError(f"{run_dir}: snapshot {step} does not fit the model "
                             f"({result.unexpected_keys[:3]} …)")
        disc.load_state_dict(snaps[step]["disc"])
    return model.eval(), disc.eval(), local


@torch.no_grad()
def compute_masks(run_dir: str | os.PathLike, images, step: int | None = None,
                  device: torch.device | str = "cpu") -> dict[int, LocalMaps]:
    """Per watched level, ``P(source)``, the gap score and the mask for target ``images``.

    Args:
        run_dir: a ``local``/``glua`` (or ``-unmasked``) run folder.
        images: ``B×C×H×W`` (tensor or array; ``C = 2·context + 1``), e.g.
            ``target_slices(...)["image"]``.
        step: ``None`` for the latest checkpoint, or a snapshot step (:func:`snapshot_steps`).

    The mask is computed with the run's ``LocalConfig`` (score, normalisation, temperature,
    top-k) even for an ``-unmasked`` run, whose training did not use it: it shows what the
    discriminator would have prioritised.
    """
    model, disc, local = load_local_run(run_dir, step, device)
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images,
                        dtype=torch.float32).to(device)
    if x.ndim != 4:
        raise ValueError(f"images must be B×C×H×W, got shape {tuple(x.shape)}")
    _, feats = model(x, return_features=True)
    out = {}
    for j, lv in enumerate(local.levels):
        d = disc.head(j, feats[lv])
        score = gap_score(d, local.score, local.gan)
        mask = local_mask(score, local.norm, local.temperature, local.top_k)
        out[lv] = LocalMaps(lv, source_probability(d, local.gan).cpu().numpy(),
                            score.cpu().numpy(), mask.cpu().numpy())
    return out


def mask_auc_over_training(run_dir: str | os.PathLike, slices: dict, quantile: float = 0.8,
                           threshold: float | None = None, at: str = "feature",
                           device: torch.device | str = "cpu") -> list[dict]:
    """The mask-vs-gap AUC (:func:`mask_gap_auc`) at every snapshot step and at the end.

    ``slices``: :func:`target_slices` output (``image`` and ``gap``). Returns one record per
    (step, level): ``{"step", "level", "auc_mask", "auc_score", "mask_mean"}`` — the AUC of the
    mask and of the raw gap score (they differ because the mask is normalised per image, so its
    ranking across images is not the score's, and by top-k).
    """
    records = []
    for step in snapshot_steps(run_dir):
        maps = compute_masks(run_dir, slices["image"], step, device)
        for lv, m in maps.items():
            records.append({"step": step, "level": lv,
                            "auc_mask": mask_gap_auc(m.mask, slices["gap"], quantile, threshold,
                                                     at),
                            "auc_score": mask_gap_auc(m.score, slices["gap"], quantile,
                                                      threshold, at),
                            "mask_mean": float(m.mask.mean())})
    return records


__all__ = ["LocalMaps", "class_mean_mask", "compute_masks", "high_gap", "load_local_run",
           "mask_auc_over_training", "mask_gap_auc", "pool_to", "roc_auc", "snapshot_steps",
           "target_slices"]
