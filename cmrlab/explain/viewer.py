"""The explainability viewer: an image, explanation maps and the true mask, side by side.

::

    maps = {"Grad-CAM": cam[0, 0], "saliency": sal[0, 0], "occlusion": occ[0, 0]}
    explain_viewer(image, maps, mask=lv_mask, title="why LV?").show()

    # one set of maps per region (what each region's score depends on), with a mask per region
    explain_viewer(image, {"LV": lv_maps, "RV": rv_maps}, mask={"LV": lv, "RV": rv})

Three panels: the image with the mask's outline; the map alone (scaled to its own range, a
diverging colour map for signed maps); the map over the image with the outline. Controls: the
method, the region (when maps are given per region), the slice of a 3D image, and the map's
opacity. Images, maps and masks are 2D ``(H, W)`` or 3D ``(H, W, Z)`` with the slice axis last
(leading axes of size 1, as in ``(1, 1, H, W)`` tensors, are dropped). It is an
:class:`cmrlab.viz.Explorer`: live widgets in JupyterLab, and in the website build a kernel-free
animation over the methods (:func:`cmrlab.config.is_static_build`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cmrlab.checks import check_number
from cmrlab.errors import ArgumentError
from cmrlab.viz.explorer import Choice, Explorer, Slider

__all__ = ["explain_viewer"]


def _array(value: Any, name: str) -> np.ndarray:
    try:
        detach = getattr(value, "detach", None)
        arr = np.asarray(detach().cpu().numpy() if detach is not None else value)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{name} must be an array or tensor, got {type(value).__name__}") from exc
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise ArgumentError(f"{name} must hold numbers, got dtype {arr.dtype}")
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim not in (2, 3):
        raise ArgumentError(f"{name} must be 2D (H, W) or 3D (H, W, Z), got shape {arr.shape}")
    return arr


def _as_3d(arr: np.ndarray) -> np.ndarray:
    return arr[..., None] if arr.ndim == 2 else arr


def explain_viewer(image: Any, maps: Mapping[str, Any], mask: Any = None, *, title: str | None = None,
                   opacity: float = 0.5, figsize: tuple[float, float] = (9.0, 3.4)) -> Explorer:
    """An :class:`~cmrlab.viz.Explorer` over ``maps`` of ``image`` (see the module docstring).

    ``maps``: ``{method: map}``, or ``{region: {method: map}}`` for maps per region. ``mask``: one
    array, or ``{region: array}`` matching the regions. Every array must have the image's shape;
    maps must be finite.
    """
    img = _as_3d(_array(image, "image"))
    if not isinstance(maps, Mapping) or not maps:
        raise ArgumentError("maps must be a non-empty mapping {method: map} or {region: {method: map}}")
    nested = all(isinstance(v, Mapping) for v in maps.values())
    by_region = {str(r): dict(m) for r, m in maps.items()} if nested else {"": dict(maps)}
    checked: dict[str, dict[str, np.ndarray]] = {}
    methods: list[str] = []
    for region, group in by_region.items():
        if not group:
            raise ArgumentError(f"region {region!r} has no maps")
        checked[region] = {}
        for method, value in group.items():
            where = f"maps[{region!r}][{method!r}]" if nested else f"maps[{method!r}]"
            arr = _as_3d(_array(value, where).astype(np.float32))
            if arr.shape != img.shape:
                raise ArgumentError(f"{where} has shape {arr.shape[:2] if arr.shape[2] == 1 else arr.shape}, "
                                    f"the image {img.shape[:2] if img.shape[2] == 1 else img.shape}")
            if not np.isfinite(arr).all():
                raise ArgumentError(f"{where} holds NaN or infinite values")
            checked[region][str(method)] = arr
            if str(method) not in methods:
                methods.append(str(method))
    masks: dict[str, np.ndarray | None] = {r: None for r in checked}
    if mask is not None:
        given = mask if isinstance(mask, Mapping) else {r: mask for r in checked}
        for region, value in given.items():
            if str(region) not in checked:
                raise ArgumentError(f"mask names the region {region!r}, which has no maps; regions: {list(checked)}")
            arr = _as_3d(_array(value, f"mask[{region!r}]" if isinstance(mask, Mapping) else "mask"))
            if arr.shape != img.shape:
                raise ArgumentError(f"the mask has shape {arr.shape}, the image {img.shape}")
            masks[str(region)] = arr != 0
    opacity = check_number("opacity", opacity, 0.0, 1.0)
    regions = list(checked)

    def draw(fig, method: str, alpha: float, region: str = regions[0], slice_: int = 0) -> None:
        axes = fig.subplots(1, 3)
        z = int(slice_)
        plane = img[:, :, z]
        low, high = np.percentile(plane, [1, 99]) if plane.size else (0.0, 1.0)
        group = checked[region]
        if method not in group:
            for ax in axes:
                ax.set_axis_off()
            axes[1].text(0.5, 0.5, f"no {method} map for {region}", ha="center", va="center")
            return
        m = group[method][:, :, z]
        signed = bool((group[method] < 0).any())
        if signed:
            bound = float(np.abs(m).max()) or 1.0
            kw = dict(cmap="RdBu_r", vmin=-bound, vmax=bound)
        else:
            kw = dict(cmap="inferno", vmin=float(m.min()), vmax=float(m.max()) if m.max() > m.min() else float(m.min()) + 1)
        outline = masks[region]
        for ax, panel in zip(axes, ("image", "map", "overlay")):
            if panel != "map":
                ax.imshow(plane, cmap="gray", vmin=low, vmax=high if high > low else low + 1)
            if panel == "map":
                shown = ax.imshow(m, **kw)
                fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
            elif panel == "overlay":
                ax.imshow(m, alpha=float(alpha), **kw)
            if outline is not None and outline[:, :, z].any() and panel != "map":
                ax.contour(outline[:, :, z], levels=[0.5], colors="cyan", linewidths=1.0)
            ax.set_axis_off()
        where = f"{region}: " if region else ""
        axes[0].set_title(f"image{' + mask' if outline is not None else ''}", fontsize=9)
        axes[1].set_title(f"{where}{method}", fontsize=9)
        axes[2].set_title("map over the image", fontsize=9)

    controls: dict[str, Any] = {"method": Choice(methods, label="method")}
    if nested:
        controls["region"] = Choice(regions, label="region")
    if img.shape[2] > 1:
        controls["slice_"] = Slider(0, img.shape[2] - 1, img.shape[2] // 2, step=1, label="slice")
    controls["alpha"] = Slider(0.0, 1.0, opacity, step=0.05, label="map opacity")
    return Explorer(draw, controls, animate="method", frames=len(methods), figsize=figsize, title=title,
                    continuous_update=False)
