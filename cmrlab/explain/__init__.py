"""Explainability: feature maps, gradient attributions, CAMs, occlusion, and scores against masks.

The layer above :mod:`cmrlab.train` (DESIGN §3). Every method takes any ``nn.Module`` and an
input batch ``(N, C, *spatial)`` (2D or 3D) and explains one score per sample
(:func:`~cmrlab.explain.targets.explained_score`: a class logit, a segmentation class summed over
a region, or a regression output)::

    from cmrlab.explain import grad_cam, integrated_gradients, energy_in_mask
    cam = grad_cam(model, x, target=3, layer="decoder.0", region=lv_mask)   # (N, 1, H, W)
    energy_in_mask(cam, lv_mask)                                           # share of the map in the LV

The methods agree with captum and MONAI to float tolerance (``tests/test_explain_oracles.py``).
"""
from cmrlab.explain.cam import grad_cam, grad_cam_pp, normalise_map, upsample_map
from cmrlab.explain.features import FeatureRecorder, feature_maps, find_layer, layer_names
from cmrlab.explain.gradients import (
    gradient_x_input,
    guided_backprop,
    integrated_gradients,
    saliency,
    smoothgrad,
)
from cmrlab.explain.occlusion import occlusion
from cmrlab.explain.scores import (
    cascade_layers,
    curve_auc,
    deletion_curve,
    energy_in_mask,
    insertion_curve,
    map_dice,
    pointing_game,
    randomise_weights,
    rank_correlation,
)
from cmrlab.explain.targets import eval_mode, explained_score
from cmrlab.explain.viewer import explain_viewer

__all__ = [
    "FeatureRecorder", "cascade_layers", "curve_auc", "deletion_curve", "energy_in_mask", "insertion_curve",
    "explain_viewer", "map_dice", "pointing_game", "randomise_weights", "rank_correlation", "eval_mode", "explained_score", "feature_maps", "find_layer", "grad_cam",
    "grad_cam_pp", "gradient_x_input", "guided_backprop", "integrated_gradients", "layer_names",
    "normalise_map", "occlusion", "saliency", "smoothgrad", "upsample_map",
]
