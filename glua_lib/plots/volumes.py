"""Images: slices of volumes with their labels, predictions, masks and heat maps over them."""
from __future__ import annotations

from typing import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from glua_lib.local.mask import local_mask


def label_overlay(ax, image: np.ndarray, label: np.ndarray | None = None,
                  class_names: Sequence[str] | None = None, alpha: float = 0.45,
                  title: str | None = None, cmap: str = "tab10") -> None:
    """Draw a 2D ``H×W`` image in gray with an ``H×W`` integer label map over it (0 = clear)."""
    ax.imshow(image, cmap="gray", interpolation="nearest")
    if label is not None:
        if label.shape != image.shape:
            raise ValueError(f"label shape {label.shape} != image shape {image.shape}")
        colours = matplotlib.colormaps[cmap]
        rgba = np.zeros(label.shape + (4,))
        for k in np.unique(label):
            if k == 0:
                continue
            rgba[label == k] = (*colours((int(k) - 1) % 10)[:3], alpha)
        ax.imshow(rgba, interpolation="nearest")
        if class_names is not None:
            handles = [matplotlib.patches.Patch(color=colours((k - 1) % 10), label=class_names[k])
                       for k in range(1, len(class_names))]
            ax.legend(handles=handles, loc="lower right", fontsize=6, framealpha=0.6)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def volume_slice(volume: np.ndarray, index: int, label: np.ndarray | None = None,
                 class_names: Sequence[str] | None = None, title: str = "",
                 fig: Figure | None = None) -> Figure:
    """One slice ``index`` of a ``D×H×W`` volume, with its label overlay if given."""
    if volume.ndim != 3:
        raise ValueError(f"volume must be D×H×W, got shape {volume.shape}")
    if not 0 <= index < volume.shape[0]:
        raise IndexError(f"slice {index} outside 0..{volume.shape[0] - 1}")
    fig = fig or Figure(figsize=(3.2, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    label_overlay(ax, volume[index], None if label is None else label[index], class_names,
                  title=f"{title} slice {index}".strip())
    return fig


def modality_pair(mr: np.ndarray, ct: np.ndarray, index: int, mr_label: np.ndarray | None = None,
                  ct_label: np.ndarray | None = None, class_names: Sequence[str] | None = None,
                  overlay: bool = True, fig: Figure | None = None) -> Figure:
    """Slice ``index`` of an MR and a CT volume (each ``D×H×W``) side by side.

    With ``overlay`` the labels are drawn over the images; without, the images alone (the
    unpaired subjects of the two modalities are different anatomies, as in the real setting).
    """
    fig = fig or Figure(figsize=(6.4, 3.4))
    axes = fig.subplots(1, 2)
    for ax, name, vol, lab in ((axes[0], "MR", mr, mr_label), (axes[1], "CT", ct, ct_label)):
        index_here = min(index, vol.shape[0] - 1)
        label_overlay(ax, vol[index_here], lab[index_here] if overlay and lab is not None else None,
                      class_names if ax is axes[1] else None, title=f"{name}, slice {index_here}")
    return fig


def heat_overlay(image: np.ndarray, heat: np.ndarray, index: int, title: str = "",
                 heat_label: str = "", alpha: float = 0.55, cmap: str = "magma",
                 vmax: float | None = None, fig: Figure | None = None) -> Figure:
    """Slice ``index`` of a ``D×H×W`` image with a ``D×H×W`` heat map (gap map, mask) beside it
    and over it."""
    if image.shape != heat.shape:
        raise ValueError(f"heat shape {heat.shape} != image shape {image.shape}")
    fig = fig or Figure(figsize=(6.4, 3.2))
    axes = fig.subplots(1, 2)
    vmax = float(heat.max()) if vmax is None else vmax
    label_overlay(axes[0], image[index], title=f"{title} slice {index}".strip())
    axes[1].imshow(image[index], cmap="gray", interpolation="nearest")
    shown = axes[1].imshow(heat[index], cmap=cmap, alpha=alpha, vmin=0, vmax=vmax or 1,
                           interpolation="nearest")
    axes[1].set_axis_off()
    axes[1].set_title(heat_label, fontsize=9)
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    return fig


def prediction_row(image: np.ndarray, label: np.ndarray, predictions: dict[str, np.ndarray],
                   index: int, class_names: Sequence[str] | None = None,
                   fig: Figure | None = None) -> Figure:
    """Slice ``index`` of a ``D×H×W`` image: ground truth, then each method's prediction.

    ``predictions`` maps a method name to its ``D×H×W`` label volume (same shape as ``label``).
    """
    for name, pred in predictions.items():
        if pred.shape != label.shape:
            raise ValueError(f"prediction {name!r} shape {pred.shape} != label {label.shape}")
    n = 1 + len(predictions)
    cols = min(n, 3)  # at most three panels a row: about 250 px each at the book's column width
    rows = -(-n // cols)
    fig = fig or Figure(figsize=(2.6 * cols, 2.6 * rows + 0.3))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    label_overlay(axes[0], image[index], label[index], title=f"ground truth, slice {index}")
    for ax, (name, pred) in zip(axes[1:], predictions.items()):
        label_overlay(ax, image[index], pred[index], title=name)
    if class_names is not None:
        colours = matplotlib.colormaps["tab10"]
        handles = [matplotlib.patches.Patch(color=colours((k - 1) % 10), label=class_names[k])
                   for k in range(1, len(class_names))]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9,
                   frameon=False)
    # panels fill the width; the legend keeps a strip of its own below them, off the anatomy
    fig.tight_layout(rect=(0, 0.3 / fig.get_size_inches()[1], 1, 1), w_pad=0.3, h_pad=1.8)
    return fig


def _upsample_nearest(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``…×h×w`` → ``…×H×W`` by nearest neighbour, source index ``floor(i·h/H)`` (the rule of
    ``torch.nn.functional.interpolate(mode="nearest")``, so masks here match
    :func:`glua_lib.local.mask.resize_mask` when enlarging)."""
    h, w = maps.shape[-2:]
    big_h, big_w = size
    rows = (np.arange(big_h) * h) // big_h
    cols = (np.arange(big_w) * w) // big_w
    return maps[..., rows[:, None], cols[None, :]]


def _class_index(class_filter, class_names: Sequence[str] | None) -> int | None:
    if class_filter is None or isinstance(class_filter, (int, np.integer)):
        return None if class_filter is None else int(class_filter)
    if class_names is None or class_filter not in class_names:
        raise ValueError(f"unknown class {class_filter!r}; pass its index or class_names "
                         "that contain it")
    return list(class_names).index(class_filter)


def mask_overlay(image: np.ndarray, mask: np.ndarray, index: int, label: np.ndarray | None = None,
                 class_filter: int | str | None = None, alpha: float = 1.0,
                 class_names: Sequence[str] | None = None, gap: np.ndarray | None = None,
                 title: str = "", mask_label: str = "local feature mask M", cmap: str = "magma",
                 gap_vmax: float | None = None, fig: Figure | None = None) -> Figure:
    """Image ``index`` of a stack with its local feature mask drawn over it.

    Args:
        image: ``B×H×W`` (or ``B×1×H×W``, the first channel is shown) images.
        mask: ``B×h×w`` or ``B×1×h×w`` mask on a feature grid (``h ≤ H``), values in ``[0, 1]``;
            enlarged to ``H×W`` by nearest neighbour, so each feature location is a block.
        index: which image of the stack.
        label: ``B×H×W`` class indices, drawn over the image in the first panel.
        class_filter: a class (index, or name in ``class_names``): the mask is shown only on that
            class's pixels (0 elsewhere) and the panel title gives its mean there. Needs ``label``.
        alpha: opacity of the mask over the image (1, the default: the mask alone, so its
            colours are the colour bar's; below 1 the grey image shows through and shifts them).
        gap: ``B×H×W`` true gap maps; if given, a third panel shows the map for comparison.

    Panels: the image (with the labels), the image with the (filtered) mask over it and a colour
    bar, then the gap map if given. ``fig.axes[1].images[1]`` holds the drawn ``H×W`` mask. With
    ``label``, the mask and gap panels get each class's outline in its label colour (thin lines
    that leave the mask's colours readable), so the anatomy is found there too.
    """
    img = np.asarray(image)
    if img.ndim == 4:
        img = img[:, 0]
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 4:
        if m.shape[1] != 1:
            raise ValueError(f"mask must be B×1×h×w or B×h×w, got shape {m.shape}")
        m = m[:, 0]
    if img.ndim != 3 or m.ndim != 3:
        raise ValueError(f"image must be B×H×W and mask B×h×w, got shapes {img.shape}, {m.shape}")
    if img.shape[0] != m.shape[0]:
        raise ValueError(f"{img.shape[0]} images but {m.shape[0]} masks")
    if m.shape[1] > img.shape[1] or m.shape[2] > img.shape[2]:
        raise ValueError(f"mask grid {m.shape[1:]} is larger than the image {img.shape[1:]}")
    if not 0 <= index < img.shape[0]:
        raise IndexError(f"image {index} outside 0..{img.shape[0] - 1}")
    for name, arr in (("label", label), ("gap", gap)):
        if arr is not None and np.shape(arr) != img.shape:
            raise ValueError(f"{name} shape {np.shape(arr)} != image shape {img.shape}")
    cls = _class_index(class_filter, class_names)
    if cls is not None and label is None:
        raise ValueError("class_filter needs the label")
    shown = _upsample_nearest(m[index], img.shape[1:])
    where = ""
    if cls is not None:
        inside = np.asarray(label[index]) == cls
        name = class_names[cls] if class_names is not None else f"class {cls}"
        mean = float(shown[inside].mean()) if inside.any() else float("nan")
        shown = np.where(inside, shown, 0.0)
        where = f"\ninside {name} (mean {mean:.2f})" if inside.any() else f"\n(no {name} here)"
    n = 3 if gap is not None else 2
    fig = fig or Figure(figsize=(3.2 * n + 0.4, 3.3))
    axes = fig.subplots(1, n)
    label_overlay(axes[0], img[index], None if label is None else np.asarray(label[index]),
                  class_names, title=f"{title} image {index}".strip())
    axes[1].imshow(img[index], cmap="gray", interpolation="nearest")
    drawn = axes[1].imshow(shown, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0,
                           interpolation="nearest")
    axes[1].set_title(f"{mask_label}{where}", fontsize=8)
    axes[1].set_axis_off()
    fig.colorbar(drawn, ax=axes[1], fraction=0.046, pad=0.04)
    if gap is not None:
        g = np.asarray(gap[index])
        vmax = float(np.max(gap)) if gap_vmax is None else gap_vmax
        heat = axes[2].imshow(g, cmap=cmap, vmin=0.0, vmax=vmax or 1.0, interpolation="nearest")
        axes[2].set_title("true gap map", fontsize=8)
        axes[2].set_axis_off()
        fig.colorbar(heat, ax=axes[2], fraction=0.046, pad=0.04)
    if label is not None:
        for ax in axes[1:]:
            _outline_classes(ax, np.asarray(label[index]))
    return fig


def _outline_classes(ax, label: np.ndarray) -> None:
    """Each foreground class of an ``H×W`` label map outlined in its :func:`label_overlay`
    colour (tab10, class ``k`` → colour ``k − 1``)."""
    colours = matplotlib.colormaps["tab10"]
    for k in np.unique(label):
        if k > 0:
            ax.contour(label == k, levels=[0.5], colors=[colours((int(k) - 1) % 10)],
                       linewidths=1.2)


def mask_explorer(image: np.ndarray, scores: dict, index: int, level: int,
                  temperature: float = 1.0, top_k: float = 1.0, alpha: float = 0.5,
                  class_filter: int | str | None = None, label: np.ndarray | None = None,
                  class_names: Sequence[str] | None = None, gap: np.ndarray | None = None,
                  norm: str = "max", fig: Figure | None = None) -> Figure:
    """:func:`mask_overlay` of the mask recomputed from gap scores with other settings.

    ``scores`` maps an encoder level to its gap scores ``g`` (``B×1×h×w``, e.g.
    ``compute_masks(...)[level].score``); the mask of image ``index`` is
    :func:`glua_lib.local.mask.local_mask` of its score with ``norm``, ``temperature`` and
    ``top_k`` (the mask is normalised per image, so one image gives the same mask as its batch).
    The remaining arguments go to :func:`mask_overlay`.
    """


    if level not in scores:
        raise ValueError(f"no scores for level {level}; levels: {sorted(scores)}")
    g = np.asarray(scores[level], dtype=np.float32)
    if g.ndim == 3:
        g = g[:, None]
    if not 0 <= index < g.shape[0]:
        raise IndexError(f"image {index} outside 0..{g.shape[0] - 1}")
    m = local_mask(torch.from_numpy(np.ascontiguousarray(g[index:index + 1])), norm,
                   temperature, top_k).numpy()
    full = np.zeros((g.shape[0],) + m.shape[1:], np.float32)
    full[index] = m[0]
    grid = "×".join(map(str, g.shape[-2:]))
    return mask_overlay(image, full, index, label, class_filter, alpha, class_names, gap,
                        mask_label=f"M, level {level} ({grid}), τ={temperature:g}, "
                                   f"top-k={top_k:g}", fig=fig)


def attention_explorer(image: np.ndarray, masks: dict, index: int, step: int,
                       alpha: float = 1.0, class_filter: int | str | None = None,
                       label: np.ndarray | None = None, class_names: Sequence[str] | None = None,
                       gap: np.ndarray | None = None, fig: Figure | None = None) -> Figure:
    """:func:`mask_overlay` of the authors' mask ``m = |tanh(D1(f))|`` as it was after ``step``
    training steps.

    ``masks`` maps a training step to the masks of the batch at that step (``B×1×h×w`` in
    ``[0, 1)``, e.g. ``attention_masks(run, images, step)[level].mask``); the remaining arguments
    go to :func:`mask_overlay`.
    """
    if step not in masks:
        raise ValueError(f"no masks after step {step}; steps: {sorted(masks)}")
    m = np.asarray(masks[step], dtype=np.float32)
    grid = "×".join(map(str, m.shape[-2:]))
    return mask_overlay(image, m, index, label, class_filter, alpha, class_names, gap,
                        mask_label=f"m = |tanh(D1(f))| ({grid}) after {step} steps", fig=fig)


def image_grid(rows: dict[str, Sequence[np.ndarray]], cell: float = 2.4,
               fig: Figure | None = None) -> Figure:
    """A grid of 2D ``H×W`` images: one row per named list (source / translated / target...).
    Each image is shown with its own gray range; row names label the first column."""
    n_rows, n_cols = len(rows), max(len(v) for v in rows.values())
    fig = fig or Figure(figsize=(cell * n_cols, cell * n_rows))
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False))
    for r, (name, images) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(images[c], cmap="gray", interpolation="nearest")
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def class_translation_grid(rows: dict[str, np.ndarray], label: np.ndarray,
                           class_names: Sequence[str], margin: int = 4, cell: float = 1.7,
                           vrange: tuple[float, float] | None = (-1.0, 1.0),
                           fig: Figure | None = None) -> Figure:
    """One column per foreground class, one row per named volume ``D×H×W`` of ``rows`` (e.g.
    source, translated, ideal translation: the same anatomy, so one ``label`` ``D×H×W`` fits
    all): each cell is the class's crop at the slice where the volume's label has most of it
    (:func:`glua_lib.style.measure.class_views`), the class outlined in its colour. A class the
    label lacks gets no column. ``vrange``: one gray range for every crop (default the prepared
    data's −1 … 1, so brightness compares across rows); ``None``: each crop its own.

    Raises:
        ValueError: a volume's shape differs from the label's.
    """
    from glua_lib.style.measure import class_views

    label = np.asarray(label)
    for name, volume in rows.items():
        if np.shape(volume) != label.shape:
            raise ValueError(f"{name}: shape {np.shape(volume)} differs from the label's "
                             f"{label.shape}: give volumes of one subject")
    views = class_views(label, len(class_names), margin)
    fig = fig or Figure(figsize=(cell * max(1, len(views)), cell * len(rows)))
    axes = np.asarray(fig.subplots(len(rows), max(1, len(views)), squeeze=False))
    colours = matplotlib.colormaps["tab10"]
    for c, (k, (z, r, s)) in enumerate(views.items()):
        for row, (name, volume) in enumerate(rows.items()):
            ax = axes[row, c]
            lo, hi = vrange if vrange is not None else (None, None)
            ax.imshow(np.asarray(volume)[z, r, s], cmap="gray", interpolation="nearest",
                      vmin=lo, vmax=hi)
            ax.contour(label[z, r, s] == k, levels=[0.5], colors=[colours((k - 1) % 10)],
                       linewidths=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
        axes[0, c].set_title(f"{class_names[k]} (slice {z})", fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def translation_row(volumes: dict[str, np.ndarray], index: int, label: np.ndarray | None = None,
                    other: Sequence[str] = (), cell: float = 2.2,
                    vrange: tuple[float, float] | None = (-1.0, 1.0),
                    fig: Figure | None = None) -> Figure:
    """Slice ``index`` of each named volume ``D×H×W`` side by side (e.g. source, translated,
    ideal translation, a real target subject) in one gray range ``vrange`` (``None``: each its
    own); ``label`` ``D×H×W``
    (the source's, which its translations share) outlines the classes on every panel except
    those named in ``other`` (another subject's, e.g. the real target). The slice slider's
    callback in chapter 2.

    Raises:
        IndexError: ``index`` is outside a volume.
    """
    fig = fig or Figure(figsize=(cell * len(volumes), cell + 0.3))
    axes = np.atleast_1d(fig.subplots(1, len(volumes)))
    for ax, (name, volume) in zip(axes, volumes.items()):
        volume = np.asarray(volume)
        if not 0 <= index < volume.shape[0]:
            raise IndexError(f"slice {index} outside {name}'s 0 … {volume.shape[0] - 1}")
        lo, hi = vrange if vrange is not None else (None, None)
        ax.imshow(volume[index], cmap="gray", interpolation="nearest", vmin=lo, vmax=hi)
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
        if label is not None and name not in other:
            _outline_classes(ax, np.asarray(label[index]))
    fig.tight_layout(pad=0.3)
    return fig
