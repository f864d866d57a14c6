"""Local alignment (GLUA's step 2): the feature discriminator, the local feature mask, the masked
adversarial loss, the ``local``/``glua`` training methods and "is the mask right?" measures.

Importing this package registers the methods ``local``, ``local-unmasked``, ``glua`` and
``glua-unmasked`` in :data:`glua_lib.seg.train.METHODS` (:mod:`glua_lib.local.methods`).
"""
from glua_lib.local.discriminator import FeatureDiscriminator
from glua_lib.local.mask import (attend, discriminator_loss, gap_score, local_mask,
                                 masked_adversarial_loss, resize_mask, source_probability)
from glua_lib.local.measure import (LocalMaps, class_mean_mask, compute_masks, load_local_run,
                                    mask_auc_over_training, mask_gap_auc,
                                    mask_gap_auc_interval, roc_auc,
                                    snapshot_steps, target_slices)
from glua_lib.local.methods import (LOCAL_METHODS, LocalAlignmentHook, LocalConfig, rampup,
                                    register_local_method)

__all__ = [
    "FeatureDiscriminator", "LOCAL_METHODS", "LocalAlignmentHook", "LocalConfig", "LocalMaps",
    "attend", "class_mean_mask", "compute_masks", "discriminator_loss", "gap_score",
    "load_local_run", "local_mask", "mask_auc_over_training", "mask_gap_auc",
    "mask_gap_auc_interval",
    "masked_adversarial_loss", "rampup", "register_local_method", "resize_mask", "roc_auc",
    "snapshot_steps", "source_probability", "target_slices",
]
