"""Chapter 2, global alignment: disentangled (MUNIT-like) style transfer between modalities.

- :mod:`glua_lib.style.models`    content/style encoders, AdaIN decoders, critics, ``StyleTransfer``
- :mod:`glua_lib.style.losses`    the loss terms, one function each
- :mod:`glua_lib.style.train`     ``StyleConfig``, ``StyleTrainer``, the resumable ``train_style``
- :mod:`glua_lib.style.translate` ``load_style_model``, ``translate_folder`` (k-means target styles)
- :mod:`glua_lib.style.measure`   ``appearance_gap`` and its ``appearance_floor``,
                                  ``class_mean_spread``, ``edge_alignment``, ``translation_report``
"""
from glua_lib.style.measure import (appearance_floor, appearance_gap, class_mean_spread,
                                    edge_alignment, translation_report)
from glua_lib.style.models import (ContentDiscriminator, ContentEncoder, Decoder, Discriminators,
                                   MultiScaleDiscriminator, StyleEncoder, StyleTransfer)
from glua_lib.style.train import (StyleConfig, StyleTrainer, TrainingDiverged, sample_grid,
                                  train_style)
from glua_lib.style.translate import kmeans, load_style_model, translate_folder

__all__ = [
    "ContentDiscriminator", "ContentEncoder", "Decoder", "Discriminators",
    "MultiScaleDiscriminator", "StyleConfig", "StyleEncoder", "StyleTrainer", "StyleTransfer",
    "TrainingDiverged", "appearance_floor", "appearance_gap", "class_mean_spread",
    "edge_alignment", "translation_report", "kmeans", "load_style_model",
    "sample_grid", "train_style", "translate_folder",
]
