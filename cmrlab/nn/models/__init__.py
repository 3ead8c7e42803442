"""Every model of the course's sources, one file per family (the registry is cmrlab.nn.registry).

Cardiac thesis:  CardiacUNet3D (ch. 5), PSPUNet (ch. 5), RegressionUNet + ScanningModule (ch. 6),
                 FrameDetector (ch. 7)
Brain thesis:    VNet / vnet_light, UNet3D (Çiçek), the DenseNet3D family (single path, two-stream
                 late fusion, two- and three-stream early fusion)
Lectures:        UNet2D (Ronneberger, with overlap_tile_predict), ENet, ExplainableFCN
"""
from cmrlab.nn.models.densenet3d import (
    DenseNet3D,
    DenseNet3DEarlyFusion,
    DenseNet3DLateFusion,
    densenet3d_single_path,
    densenet3d_three_stream_early_fusion,
    densenet3d_two_stream_early_fusion,
    densenet3d_two_stream_late_fusion,
)
from cmrlab.nn.models.enet import ENet
from cmrlab.nn.models.fcn import ExplainableFCN
from cmrlab.nn.models.frame_detector import FrameDetector
from cmrlab.nn.models.pspunet import PSPUNet
from cmrlab.nn.models.regression_unet import RegressionUNet, ScanningModule
from cmrlab.nn.models.unet2d import UNet2D, overlap_tile_predict
from cmrlab.nn.models.unet3d import UNet3D
from cmrlab.nn.models.unet3d_cardiac import CardiacUNet3D
from cmrlab.nn.models.vnet import VNet, vnet_light

__all__ = [
    "CardiacUNet3D", "DenseNet3D", "DenseNet3DEarlyFusion", "DenseNet3DLateFusion", "ENet",
    "ExplainableFCN", "FrameDetector", "PSPUNet", "RegressionUNet", "ScanningModule", "UNet2D",
    "UNet3D", "VNet", "densenet3d_single_path", "densenet3d_three_stream_early_fusion",
    "densenet3d_two_stream_early_fusion", "densenet3d_two_stream_late_fusion",
    "overlap_tile_predict", "vnet_light",
]
