"""Prediction (slice by slice, stacked back into volumes) and evaluation of prediction folders.

``predict_folder(run_dir, input_dir, out_dir)`` writes a prepared folder whose ``label`` arrays
are the predicted classes (``image``, ``spacing`` and the split of every subject are copied from
the input), so predictions are read with the same functions as data. ``evaluate_folders(pred_dir,
gt_dir)`` scores it against a prepared folder's labels: per-class 3D Dice and ASSD in mm
(:mod:`glua_lib.metrics`, whose docstring defines the empty cases).

A method that masks target features at test time (GLUA's local step,
:mod:`glua_lib.local.attention`) keeps its mask in ``model.pt``; :func:`load_feature_mask`
rebuilds it and :func:`predict_folder` applies it to target images (a folder of the run's target
modality, unless ``domain`` says otherwise). A ``model.pt`` of such a method without its mask
(made before the mask was part of the forward pass) is refused: retrain it.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from glua_lib.checkpoint import load_checkpoint
from glua_lib.data import (Volume, check_slice_size, get_task, list_subjects, load_volume,
                           make_manifest, read_manifest, save_volume, staged_output,
                           write_manifest)
from glua_lib.metrics import ASSD_UNITS, PROTOCOLS, MetricAccumulator, pool_volumes
from glua_lib.runtime import amp_enabled, autocast, get_device
from glua_lib.seg.deeplab import DeepLabV2
from glua_lib.methods import get_method
from glua_lib.seg.unet import UNet


def load_model(run_dir: str | os.PathLike, device: torch.device | str | None = None
               ) -> tuple[UNet, dict]:
    """The final model of a run folder (``model.pt``) in eval mode, and its checkpoint dict."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run folder does not exist")
    path = run_dir / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no final model; the run is missing or unfinished "
                                f"(rerun train-seg with the same --out to finish it)")
    if not isinstance(device, torch.device):
        device = get_device(device)
    ckpt = load_checkpoint(path, map_location=device)
    net = DeepLabV2 if ckpt.get("backbone") == "deeplab" else UNet  # no key: before DeepLab
    model = net(**ckpt["model_config"]).to(device)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ckpt


def load_feature_mask(ckpt: dict, device: torch.device | str | None = None, where: str = ""):
    """The test-time ``feature_mask`` callable of a final model's checkpoint dict
    (:func:`load_model`), or ``None`` when its method masks nothing at test time.

    Raises:
        ValueError: the method masks target features at test time but ``model.pt`` lacks the
            mask (``where`` names the file in the message).
    """
    method = ckpt.get("method")
    try:
        spec = get_method(method)
    except ValueError:  # a method of the user's own, not registered in this process
        return None
    if spec.load_feature_mask is None:
        return None
    if "feature_mask" not in ckpt:
        raise ValueError(f"{where or 'model.pt'}: a {method!r} run masks target features at "
                         "test time, but this model was saved without its mask (it was trained "
                         "before the mask was part of the forward pass); predicting without it "
                         "would not be this method: delete the run folder and train it again")
    return spec.load_feature_mask(ckpt["feature_mask"], torch.device(device or "cpu"))


@torch.no_grad()
def predict_volume(model: UNet, image: np.ndarray, context: int = 0,
                   device: torch.device | None = None, batch_size: int = 32,
                   amp: bool = False, feature_mask=None) -> np.ndarray:
    """Predicted classes (uint8 ``D×H×W``) of a ``D×H×W`` image, slice by slice.

    Each slice is fed with ``context`` neighbours on each side as channels (edge slices repeated),
    exactly as :class:`~glua_lib.data.SliceDataset` builds training inputs. ``feature_mask``:
    the target path's mask (:func:`load_feature_mask`), passed to the model; ``None``: unmasked.
    """
    if image.ndim != 3:
        raise ValueError(f"expected a D×H×W image, got shape {image.shape}")
    device = device if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    depth = len(image)
    out = np.empty(image.shape, np.uint8)
    offsets = np.arange(-context, context + 1)
    for z0 in range(0, depth, batch_size):
        zs = np.arange(z0, min(depth, z0 + batch_size))
        idx = np.clip(zs[:, None] + offsets[None, :], 0, depth - 1)
        x = torch.from_numpy(np.ascontiguousarray(image[idx], np.float32)).to(device)
        with autocast(device, amp_enabled(amp, device)):
            logits = model(x, feature_mask=feature_mask) if feature_mask else model(x)
        out[zs] = logits.argmax(1).to(torch.uint8).cpu().numpy()
    model.train(was_training)
    return out


def predict_folder(run_dir: str | os.PathLike, input_dir: str | os.PathLike,
                   out_dir: str | os.PathLike, device: torch.device | str | None = None,
                   batch_size: int = 32, split: str | None = None, overwrite: bool = False,
                   progress: bool = True, domain: str | None = None) -> Path:
    """Predict every volume of a prepared folder (or one split) with a run's final model.

    ``domain``: ``"target"`` or ``"source"``, for a method that masks target features at test
    time (:func:`load_feature_mask`); ``None``: ``"target"`` when the folder's modality is the
    run's target modality. Other methods ignore it.

    Writes ``out_dir`` as a prepared folder (atomically: all or nothing): ``label`` = predicted
    classes, ``image``/``spacing``/``modality``/``subject`` and splits copied from the input; the
    manifest records the run and the input folder. Returns ``out_dir``.

    Raises:
        FileNotFoundError: the input folder or the run's final model is missing.
        ValueError: another task, no subjects, or slices of another size than the model was
            trained on (the file named; nothing is written).
    """
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"{input_dir}: input folder does not exist")
    manifest = read_manifest(input_dir)
    model, ckpt = load_model(run_dir, device)
    device = next(model.parameters()).device
    if domain not in (None, "target", "source"):
        raise ValueError(f"domain must be 'target' or 'source', got {domain!r}")
    mask = load_feature_mask(ckpt, device, str(Path(run_dir) / "model.pt"))
    if domain is None:
        domain = "target" if manifest.get("modality") == ckpt.get("target_modality") else "source"
    mask = mask if domain == "target" else None
    if manifest["task"] != ckpt["task"]:
        raise ValueError(f"{input_dir} holds task {manifest['task']!r} but the model in "
                         f"{run_dir} segments {ckpt['task']!r}")
    subjects = list_subjects(input_dir, split)
    if not subjects:
        raise ValueError(f"{input_dir}: no subjects" + (f" in split {split!r}" if split else ""))
    amp = bool(ckpt["config"].get("amp", False))
    from tqdm.auto import tqdm

    with staged_output(out_dir, overwrite=overwrite) as stage:
        for subject in tqdm(subjects, desc="predict", disable=not progress):
            file = input_dir / manifest["subjects"][subject]["file"]
            vol = load_volume(file)
            trained = ckpt.get("slice_size") or vol.image.shape[1:]  # older runs: unknown
            check_slice_size(file, vol.image.shape[1:], trained,
                             f"the model in {run_dir} was trained on",
                             f"prepare this folder with --size {trained[0]}")
            pred = predict_volume(model, vol.image, int(ckpt["context"]), device, batch_size, amp,
                                  mask)
            save_volume(stage / f"{subject}.npz", Volume(
                image=vol.image, label=pred, spacing=vol.spacing, modality=vol.modality,
                task=vol.task, subject=vol.subject))
        splits = {s: manifest["subjects"][s]["split"] for s in subjects}
        write_manifest(stage, make_manifest(
            dataset="prediction", task=manifest["task"], modality=manifest["modality"],
            normalisation=manifest.get("normalisation", {}), splits=splits,
            command=shlex.join([Path(sys.executable).name, *sys.argv]),
            extra={"prediction": {"run": str(Path(run_dir).resolve()),
                                  "input": str(input_dir.resolve()),
                                  "method": ckpt.get("method"),
                                  "target_features_masked": mask is not None,
                                  "uses_target_labels": bool(ckpt.get("uses_target_labels"))}}))
    return out_dir


def evaluate_folders(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike,
                     split: str | None = "test", progress: bool = False,
                     protocol: str = "per-volume", assd_unit: str = "mm") -> dict:
    """Per-volume, per-class 3D Dice and ASSD (mm) of a prediction folder against ground truth.

    Every subject of ``gt_dir`` (of ``split``; ``None`` for all) must be in ``pred_dir`` with
    the same shape; the spacing is taken from the ground truth. Extra predicted subjects are
    ignored. ``protocol``: ``"per-volume"`` (each volume scored, SIFA's protocol) or
    ``"pooled"`` (all volumes concatenated and scored once, the GLUA authors'; its one entry in
    ``volumes`` is named ``"pooled"``); ``assd_unit``: ``"mm"`` or ``"voxel"``
    (:mod:`glua_lib.metrics`). Both are recorded in the result.

    Returns:
        ``{"task", "classes" (background first), "split", "pred_dir", "gt_dir",
        "volumes": {subject: {"dice": {class: v}, "assd": {class: mm}, "status": {...},
        "spacing", "shape"}}}`` (JSON-ready; tabulate with :mod:`glua_lib.results`).

    Raises:
        FileNotFoundError / ValueError: a missing folder, another task, a subject missing from
            the predictions, or a shape mismatch; the message names the subject and files.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for path, what in ((pred_dir, "prediction"), (gt_dir, "ground-truth")):
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: {what} folder does not exist")
    pm, gm = read_manifest(pred_dir), read_manifest(gt_dir)
    if pm["task"] != gm["task"]:
        raise ValueError(f"{pred_dir} holds task {pm['task']!r} but {gt_dir} holds {gm['task']!r}")
    subjects = list_subjects(gt_dir, split)
    if not subjects:
        raise ValueError(f"{gt_dir / 'manifest.json'}: no subjects"
                         + (f" in split {split!r}" if split else ""))
    missing = [s for s in subjects if s not in pm["subjects"]]
    if missing:
        raise ValueError(f"{pred_dir}: no prediction for subjects {missing} of {gt_dir}"
                         + (f" (split {split!r})" if split else ""))
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if assd_unit not in ASSD_UNITS:
        raise ValueError(f"assd_unit must be one of {ASSD_UNITS}, got {assd_unit!r}")
    task = get_task(gm["task"])
    acc = MetricAccumulator(task.classes)
    pooled: list[tuple] = []  # (pred, gt, spacing, file) of each volume, for "pooled"
    from tqdm.auto import tqdm

    for subject in tqdm(subjects, desc="evaluate", disable=not progress):
        p_file = pred_dir / pm["subjects"][subject]["file"]
        g_file = gt_dir / gm["subjects"][subject]["file"]
        pred, gt = load_volume(p_file), load_volume(g_file)
        if pred.label.shape != gt.label.shape:
            raise ValueError(f"subject {subject!r}: prediction {p_file} has shape "
                             f"{pred.label.shape} but ground truth {g_file} has {gt.label.shape}")
        if protocol == "pooled":
            pooled.append((pred.label, gt.label, gt.spacing, str(g_file)))
        else:
            spacing = gt.spacing if assd_unit == "mm" else (1.0, 1.0, 1.0)
            acc.add(subject, pred.label, gt.label, spacing)
    if protocol == "pooled":
        p_all, g_all, spacing = pool_volumes(*(list(x) for x in zip(*pooled)), assd_unit)
        acc.add("pooled", p_all, g_all, spacing)
    return {"task": task.name, "split": split, "protocol": protocol, "assd_unit": assd_unit,
            **({"pooled_subjects": list(subjects)} if protocol == "pooled" else {}),
            "pred_dir": str(pred_dir.resolve()), "gt_dir": str(gt_dir.resolve()),
            **acc.to_dict()}
