"""Local alignment (GLUA's step 2): the feature discriminator, the local feature mask, the masked
adversarial loss, the ``local``/``glua`` training methods and "is the mask right?" measures.

Importing this package registers the methods ``local``, ``local-unmasked``, ``glua`` and
``glua-unmasked`` in :data:`glua_lib.seg.train.METHODS` (:mod:`glua_lib.local.methods`: the
book's first guess, the mask as a loss weight), and the authors' mechanism, the mask as attention
on the target path (:mod:`glua_lib.local.attention`): ``local-attn``, ``glua-attn`` and their
``-unmasked`` twins (:mod:`glua_lib.local.attention_methods`).
"""
from glua_lib.local.attention import (FeatureMask, MaskDiscriminator, OutputDiscriminator,
                                      apply_mask, attention_mask, discriminator_step_loss,
                                      lsgan_loss)
from glua_lib.local.attention_methods import (ATTENTION_METHODS, AttentionConfig,
                                              FeatureAttentionHook, attention_method)
from glua_lib.local.discriminator import FeatureDiscriminator
from glua_lib.local.mask import (attend, discriminator_loss, gap_score, local_mask,
                                 masked_adversarial_loss, resize_mask, source_probability)
from glua_lib.local.measure import (LocalMaps, class_mean_mask, compute_masks, load_local_run,
                                    mask_auc_over_training, mask_gap_auc,
                                    mask_gap_auc_interval, roc_auc,
                                    snapshot_steps, target_slices)
from glua_lib.local.methods import (LOCAL_METHODS, LocalAlignmentHook, LocalConfig, rampup,
                                    register_local_method)
from glua_lib.seg.train import register_method

for _name, _description, _global, _overrides in ATTENTION_METHODS:
    register_method(attention_method(_name, _description, _global, **_overrides))

__all__ = [
    "ATTENTION_METHODS", "AttentionConfig", "FeatureAttentionHook", "FeatureMask",
    "MaskDiscriminator", "OutputDiscriminator", "apply_mask", "attention_method",
    "attention_mask", "discriminator_step_loss", "lsgan_loss",
    "FeatureDiscriminator", "LOCAL_METHODS", "LocalAlignmentHook", "LocalConfig", "LocalMaps",
    "attend", "class_mean_mask", "compute_masks", "discriminator_loss", "gap_score",
    "load_local_run", "local_mask", "mask_auc_over_training", "mask_gap_auc",
    "mask_gap_auc_interval",
    "masked_adversarial_loss", "rampup", "register_local_method", "resize_mask", "roc_auc",
    "snapshot_steps", "source_probability", "target_slices",
]
