"""The segmenter (2D U-Net), its loss, training methods, prediction and evaluation."""
from glua_lib.seg.losses import DiceCELoss, soft_dice_loss
from glua_lib.seg.predict import evaluate_folders, load_model, predict_folder, predict_volume
from glua_lib.seg.train import (METHODS, Batch, Method, NonFiniteLossError, SegConfig, StepHook,
                                get_method, read_log, register_method, train_seg)
from glua_lib.seg.unet import UNet, count_parameters

__all__ = [
    "Batch", "DiceCELoss", "METHODS", "Method", "NonFiniteLossError", "SegConfig", "StepHook",
    "UNet", "count_parameters", "evaluate_folders", "get_method", "load_model", "predict_folder",
    "predict_volume", "read_log", "register_method", "soft_dice_loss", "train_seg",
]
