"""Every training method of the book, in one table: :data:`METHODS`.

A method (:class:`~glua_lib.method.Method`, the contract the segmenter's trainer knows) names the
labelled folder the segmenter fits, whether it also sees unlabelled target images, and the step
hook that adds its alignment. :func:`glua_lib.seg.train.train_seg` and ``python -m glua_lib
train-seg --method NAME`` take a name of this table.

==============================  ===================================  ===============================
method                          labelled images the segmenter fits   on target images
==============================  ===================================  ===============================
``none``                        source                               nothing (no adaptation)
``global``                      source translated to target style    nothing (GLUA's step 1 alone)
``local``                       source                               GLUA's local step as its
                                                                     authors built it: target
                                                                     features ``f + m ⊙ f``,
                                                                     ``m = |tanh(D1(f))|``; ``D2``
``local-unmasked``              source                               same discriminators, no mask
``local-every-level``           source                               the mask at every U-Net level
``local-detached``              source                               no gradient through the mask
``glua``                        translated source                    as ``local``: GLUA as its
                                                                     authors built it
``glua-unmasked``               translated source                    same discriminators, no mask
``local-lossweight``            source                               the book's first guess: the
                                                                     mask as a loss weight
``local-lossweight-unmasked``   source                               the same, the mask ``M ≡ 1``
``glua-lossweight``             translated source                    as ``local-lossweight``
``glua-lossweight-unmasked``    translated source                    the same, the mask ``M ≡ 1``
``oracle``                      **target, with target labels**       the supervised upper bound
==============================  ===================================  ===============================

The names ``local`` and ``glua`` meant the loss-weight guess until 2026-12-06; their run folders
have other names (the method's settings are in the name), and a model of that time saved as
``glua`` or ``local`` is refused by ``predict`` with a message to retrain it
(:func:`glua_lib.seg.predict.load_feature_mask`).

A variant is one more entry: ``METHODS["glua-d1"] = attention_method("glua-d1",
"...", translated_source, needs_style_run=True, output_disc=False)``. Nothing is registered on
import: this table is all there is.
"""
from __future__ import annotations

from pathlib import Path

from glua_lib.data.prepared import MANIFEST
from glua_lib.local.attention_methods import attention_method
from glua_lib.local.methods import lossweight_method
from glua_lib.method import Method, TrainContext
from glua_lib.style.translate import translate_folder


def source_images(ctx: TrainContext) -> Path:
    """The labelled source folder as it is."""
    return ctx.source_dir


def target_images(ctx: TrainContext) -> Path:
    """The target folder, with its labels (``oracle`` only)."""
    return ctx.target_dir


def translated_source(ctx: TrainContext) -> Path:
    """The source rendered in target style by the style model (made once, in ``out/translated``)."""
    if ctx.style_run is None:
        raise ValueError(f"method {ctx.config.method!r} trains on source images translated by a "
                         "style model: pass --style-run RUN_DIR (a trained global style model)")
    out = ctx.out_dir / "translated"
    if (out / MANIFEST).is_file():  # made by an earlier, interrupted run of this folder
        return out
    return Path(translate_folder(ctx.style_run, ctx.source_dir, out, n_styles=ctx.config.n_styles,
                                 device=ctx.device, seed=ctx.config.seed, overwrite=False,
                                 progress=ctx.progress, styles=ctx.config.styles))


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("none", "no adaptation: source images and labels", labelled_data=source_images),
    Method("global", "global alignment: source translated to target style, source labels",
           labelled_data=translated_source, needs_style_run=True),
    # GLUA's local step as its authors built it (glua_lib.local.attention)
    attention_method("local", "the local step alone: source images and labels; target features "
                     "masked f + |tanh(D1(f))|·f, D1 and D2 least-squares alignment",
                     source_images),
    attention_method("local-unmasked", "ablation of local: the same discriminators, no mask",
                     source_images, masked=False),
    attention_method("local-every-level", "variant of local: the mask at every encoder level "
                     "(the skip connections too), not only the bottleneck", source_images,
                     where="every"),
    attention_method("local-detached", "variant of local: no gradient through the mask",
                     source_images, detach_mask=True),
    attention_method("glua", "GLUA as its authors built it: source translated to target style "
                     "with source labels; target features masked f + |tanh(D1(f))|·f, D1 and D2",
                     translated_source, needs_style_run=True),
    attention_method("glua-unmasked", "ablation of glua: the same discriminators, no mask",
                     translated_source, needs_style_run=True, masked=False),
    # the book's first guess: the mask as a loss weight (glua_lib.local.mask)
    lossweight_method("local-lossweight", "the book's first guess, alone: source images and "
                      "labels + adversarial alignment of target features, weighted by the mask",
                      source_images),
    lossweight_method("local-lossweight-unmasked", "ablation of local-lossweight: the mask "
                      "M ≡ 1", source_images, masked=False),
    lossweight_method("glua-lossweight", "the book's first guess at GLUA: translated source + "
                      "adversarial alignment of target features weighted by the mask",
                      translated_source, needs_style_run=True),
    lossweight_method("glua-lossweight-unmasked", "ablation of glua-lossweight: the mask M ≡ 1",
                      translated_source, needs_style_run=True, masked=False),
    Method("oracle", "upper bound: TARGET images and TARGET labels", labelled_data=target_images,
           uses_target_labels=True),
)}


def get_method(name: str) -> Method:
    """The method ``name`` of :data:`METHODS`.

    Raises:
        ValueError: no such method; the message lists them.
    """
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}") from None


__all__ = ["METHODS", "get_method", "source_images", "target_images", "translated_source"]
