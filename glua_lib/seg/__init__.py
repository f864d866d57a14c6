"""The segmenter: its networks (2D U-Net, DeepLab-v2) and loss here; training in
:mod:`glua_lib.seg.train`, prediction and evaluation in :mod:`glua_lib.seg.predict`.

The package imports only the networks and the loss, so that the local step and the table of
methods (:mod:`glua_lib.methods`, which the trainer imports) can use them without an import
circle.
"""
from glua_lib.seg.deeplab import DeepLabV2
from glua_lib.seg.losses import DiceCELoss, soft_dice_loss
from glua_lib.seg.unet import UNet, count_parameters

__all__ = ["DeepLabV2", "DiceCELoss", "UNet", "count_parameters", "soft_dice_loss"]
