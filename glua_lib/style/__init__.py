"""Chapter 2, global alignment: style transfer between modalities, two translators.

- :mod:`glua_lib.style.models`    content/style encoders, AdaIN decoders, critics, ``StyleTransfer``
                                  (MUNIT-like) and ``DomainTranslator`` (the authors': one encoder
                                  and decoder told the domain, ``DomainDiscriminator``)
- :mod:`glua_lib.style.losses`    the loss terms, one function each
- :mod:`glua_lib.style.train`     ``StyleConfig``, ``StyleTrainer``, ``ImagePool``, the resumable
                                  ``train_style``
- :mod:`glua_lib.style.translate` ``load_style_model``, ``translate_folder`` (k-means styles),
                                  ``style_effect``, ``volume_style_effect`` (do the styles
                                  differ?)
- :mod:`glua_lib.style.measure`   ``appearance_gap`` and its ``appearance_floor``,
                                  ``class_mean_spread``, ``class_views``, ``edge_alignment``,
                                  ``translation_report``
"""
from glua_lib.style.measure import (appearance_floor, appearance_gap, class_mean_spread,
                                    class_views, edge_alignment, translation_report)
from glua_lib.style.models import (ContentDiscriminator, ContentEncoder, Decoder, Discriminators,
                                   DomainDiscriminator, DomainTranslator, MultiScaleDiscriminator,
                                   StyleEncoder, StyleTransfer, make_critics, make_translator)
from glua_lib.style.train import (STYLE_ARCHS, ImagePool, StyleConfig, StyleTrainer,
                                  sample_grid, train_style)
from glua_lib.style.translate import (CollapsedStylesWarning, StyleEffect, kmeans,
                                      load_style_model, style_effect, target_style_codes,
                                      translate_folder, volume_style_effect)

__all__ = [
    "CollapsedStylesWarning", "ContentDiscriminator", "ContentEncoder", "Decoder",
    "Discriminators", "DomainDiscriminator", "DomainTranslator", "ImagePool",
    "MultiScaleDiscriminator", "STYLE_ARCHS", "make_critics", "make_translator", "StyleConfig", "StyleEffect", "StyleEncoder",
    "StyleTrainer", "StyleTransfer", "appearance_floor", "appearance_gap",
    "class_mean_spread", "class_views", "edge_alignment", "translation_report", "kmeans", "load_style_model",
    "sample_grid", "style_effect", "target_style_codes", "train_style", "translate_folder",
    "volume_style_effect",
]
