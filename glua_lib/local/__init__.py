"""Local alignment (GLUA's step 2): the discriminators, the local feature mask, the step hooks of
the local and GLUA methods, and "is the mask right?" measures.

Two mechanisms: the authors', the mask as attention on the target path
(:mod:`glua_lib.local.attention`, hooks in :mod:`glua_lib.local.attention_methods`), and the
book's first guess, the mask as a loss weight (:mod:`glua_lib.local.mask`,
:mod:`glua_lib.local.methods`). The methods built from them are entries of the one table
:data:`glua_lib.methods.METHODS`; importing this package registers nothing.
"""
from glua_lib.local.attention import (FeatureMask, MaskDiscriminator, OutputDiscriminator,
                                      apply_mask, attention_mask, discriminator_step_loss,
                                      lsgan_loss)
from glua_lib.local.attention_methods import (AttentionConfig, FeatureAttentionHook,
                                              attention_method)
from glua_lib.local.discriminator import FeatureDiscriminator
from glua_lib.local.mask import (attend, discriminator_loss, gap_score, local_mask,
                                 masked_adversarial_loss, resize_mask, source_probability)
from glua_lib.local.measure import (MaskByClass, class_mean_mask, mask_by_class, mask_gap_auc,
                                    mask_gap_auc_interval, quantile_match, roc_auc)
from glua_lib.local.runs import (AttentionMaps, AttentionView, LocalMaps, attention_masks,
                                 attention_view,
                                 compute_masks, load_attention_run, load_local_run,
                                 mask_auc_over_training, snapshot_steps, target_slices)
from glua_lib.local.methods import LocalAlignmentHook, LocalConfig, lossweight_method, rampup

__all__ = [
    "AttentionMaps", "AttentionView", "attention_masks", "attention_view", "load_attention_run",
    "AttentionConfig", "MaskByClass", "mask_by_class", "quantile_match", "FeatureAttentionHook",
    "FeatureMask",
    "MaskDiscriminator", "OutputDiscriminator", "apply_mask", "attention_method",
    "attention_mask", "discriminator_step_loss", "lsgan_loss",
    "FeatureDiscriminator", "LocalAlignmentHook", "LocalConfig", "LocalMaps",
    "attend", "class_mean_mask", "compute_masks", "discriminator_loss", "gap_score",
    "load_local_run", "local_mask", "mask_auc_over_training", "mask_gap_auc",
    "mask_gap_auc_interval",
    "masked_adversarial_loss", "lossweight_method", "rampup", "resize_mask", "roc_auc",
    "snapshot_steps", "source_probability", "target_slices",
]
