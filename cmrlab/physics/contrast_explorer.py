"""The contrast explorer: sequence timings → tissue signals and a simulated brain slice.

The brightness of a tissue in an MR image is its signal equation evaluated at the sequence's
timings (:mod:`cmrlab.physics.signals`) with the tissue's T1, T2, T2* and proton density
(:mod:`cmrlab.physics.tissues`). A voxel that holds several tissues gives the sum of their
signals weighted by the fraction of the voxel each one fills (partial volume)::

    image(x) = Σ_tissues fraction_tissue(x) · S(tissue, sequence)

This module builds the fraction maps of grey matter, white matter and CSF for one axial slice
of the MNI152 template that ships with nilearn (:func:`mni_tissue_fractions`), evaluates the
signal of each tissue for a spin echo, a spoiled gradient echo or an inversion recovery
(:func:`tissue_signal`), sums them into an image (:func:`synthesize_slice`), and puts it all
behind sliders (:func:`contrast_explorer`)::

    from cmrlab.physics.contrast_explorer import contrast_explorer
    contrast_explorer(sequence="SE", TR=3500, TE=13, animate="TE").show()

Units as everywhere in :mod:`cmrlab.physics`: ms, degrees, tesla.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cmrlab.checks import check_choice, check_int, check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics import signals
from cmrlab.physics.tissues import Tissue, get_tissue
from cmrlab.viz.explorer import Choice, Explorer, Slider

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "BRAIN_TISSUES",
    "SEQUENCES",
    "contrast_explorer",
    "mni_tissue_fractions",
    "synthesize_slice",
    "timing_problem",
    "tissue_signal",
]

#: Sequences the explorer knows: spin echo, spoiled gradient echo, inversion recovery (magnitude).
SEQUENCES: tuple[str, ...] = ("SE", "GRE", "IR")
#: The tissues of :func:`mni_tissue_fractions`, in table names.
BRAIN_TISSUES: tuple[str, ...] = ("white_matter", "grey_matter", "csf")

# MNI152 2009a symmetric template (1 mm, 197 × 233 × 189) as shipped with nilearn.
_MNI_FILE = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
_MNI_Z_ORIGIN = -72.0  # z (mm) of the first axial slice: the template's affine is diag(1) + shift
_MNI_N_Z = 189

# Slider ranges of the explorer (ms and degrees).
_RANGES = {"TR": (5, 10000), "TE": (1, 250), "TI": (0, 4000), "flip": (1, 90)}
_COLOURS = {
    "white_matter": "#d9d9d9", "grey_matter": "#8c8c8c", "csf": "#4c72b0", "tumour": "#c44e52",
    "gadolinium_enhanced": "#dd8452", "oedema": "#55a868", "fat": "#ccb974", "blood": "#8172b3",
    "myocardium": "#937860",
}


# --------------------------------------------------------------------------------------------
# Tissue fraction maps
# --------------------------------------------------------------------------------------------
def _mni_folder() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ArgumentError("nilearn is not installed: it ships the MNI152 maps the brain slice is built from")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


@lru_cache(maxsize=4)
def _mni_axial(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GM, WM probabilities and the brain mask of one 1 mm axial slice, indexed [x, y] (read-only)."""
    import nibabel as nib

    folder = _mni_folder()
    out = []
    for name in ("gm", "wm", "t1"):
        volume = nib.load(folder / _MNI_FILE.format(name))
        out.append(np.asarray(volume.dataobj[:, :, index], dtype=np.float64))
    gm, wm, t1 = out
    # The template T1 is skull-stripped: its non-zero voxels are the intracranial volume.
    arrays = (gm / 255.0, wm / 255.0, (t1 > 0).astype(np.float64))
    for a in arrays:
        a.setflags(write=False)
    return arrays


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    ny, nx = (a.shape[0] // k) * k, (a.shape[1] // k) * k
    return a[:ny, :nx].reshape(ny // k, k, nx // k, k).mean(axis=(1, 3))


def mni_tissue_fractions(z_mm: float = 18.0, voxel_mm: int = 2) -> dict[str, np.ndarray]:
    """Fractions of white matter, grey matter and CSF in one axial slice of the MNI152 template.

    ``z_mm`` is the MNI z coordinate of the slice (−72 … 116 mm; 18 mm cuts through the bodies of
    the lateral ventricles). The grey- and white-matter maps are nilearn's 1 mm probability maps
    of the ICBM 2009a symmetric template (Fonov et al. 2011); CSF is what is left of the
    intracranial volume (the non-zero voxels of the skull-stripped template T1)::

        f_CSF = clip(brain_mask − f_GM − f_WM, 0, 1)

    ``voxel_mm`` (a whole number of mm) averages ``voxel_mm × voxel_mm`` blocks of 1 mm voxels,
    which is exactly how fractions combine in a larger voxel (partial volume). Returns
    ``{"white_matter", "grey_matter", "csf"}`` → float arrays of shape (rows, columns) in display
    orientation: anterior at the top and the subject's right on the left of the image
    (radiological convention), for ``imshow`` with its default ``origin="upper"``. Outside the
    head all fractions are 0; inside they add up to 1.
    """
    z_mm = check_number("z_mm", z_mm)
    index = int(round(z_mm - _MNI_Z_ORIGIN))
    if not 0 <= index < _MNI_N_Z:
        raise ArgumentError(
            f"z_mm must lie in the template, {_MNI_Z_ORIGIN:g} … {_MNI_Z_ORIGIN + _MNI_N_Z - 1:g} mm, got {z_mm!r}"
        )
    voxel_mm = check_int("voxel_mm (whole mm)", voxel_mm, 1, 16)
    gm, wm, mask = _mni_axial(index)
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    # the probability maps sum to slightly more than 1 in a few voxels: rescale those to 1
    total = gm + wm + csf
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-12), 1.0)
    fractions = {"white_matter": wm * scale, "grey_matter": gm * scale, "csf": csf * scale}
    # [x, y] with x to the subject's left → rows anterior→posterior, columns right→left
    return {name: _block_mean(f[::-1, ::-1].T, int(voxel_mm)) for name, f in fractions.items()}


def synthesize_slice(fractions: Mapping[str, np.ndarray], signal: Mapping[str, float]) -> np.ndarray:
    """The image a sequence gives of a slice: Σ_tissues fraction_tissue · signal_tissue.

    ``fractions`` maps tissue names to fraction maps of one shape; ``signal`` maps the same names
    to each tissue's signal (e.g. from :func:`tissue_signal`).
    """
    _check_fractions(fractions)
    missing = set(fractions) - set(signal)
    if missing:
        raise ArgumentError(f"signal has no value for tissue(s) {sorted(missing)}")
    image = np.zeros(next(iter(fractions.values())).shape)
    for name, f in fractions.items():
        image += np.asarray(f, dtype=np.float64) * float(signal[name])
    return image


def _check_fractions(fractions: Mapping[str, np.ndarray]) -> None:
    if not isinstance(fractions, Mapping) or not fractions:
        raise ArgumentError("fractions must be a non-empty mapping of tissue name → 2D fraction map")
    shapes = set()
    for name, f in fractions.items():
        a = np.asarray(f)
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
            raise ArgumentError(f"fractions[{name!r}] must be a 2D numeric array, got shape {a.shape}")
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ArgumentError(f"fractions[{name!r}] must hold finite values in [0, 1]")
        shapes.add(a.shape)
    if len(shapes) > 1:
        raise ArgumentError(f"fractions must all have one shape, got {sorted(shapes)}")


# --------------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------------
def timing_problem(sequence: str, TR: float, TE: float, TI: float = 0.0) -> str | None:
    """Why the timings cannot be played out, or ``None`` when they can.

    A spin echo or gradient echo needs TE ≤ TR; an inversion recovery needs TI + TE ≤ TR.
    """
    check_choice("sequence", sequence, SEQUENCES)
    if sequence == "IR" and TI + TE > TR:
        return f"TI + TE = {TI + TE:g} ms exceeds TR = {TR:g} ms"
    if TE > TR:
        return f"TE = {TE:g} ms exceeds TR = {TR:g} ms"
    return None


def tissue_signal(
    tissue: Tissue, sequence: str, TR: float, TE: float, TI: float = 0.0, flip: float = 90.0
) -> float:
    """Signal of ``tissue`` (a fraction of water's equilibrium magnetisation) for one sequence.

    * ``"SE"`` spin echo: S = PD·(1 − e^{−TR/T1})·e^{−TE/T2} (``flip`` and ``TI`` unused);
    * ``"GRE"`` spoiled gradient echo:
      S = PD·sin α·(1 − E1)/(1 − cos α·E1)·e^{−TE/T2*}, E1 = e^{−TR/T1};
    * ``"IR"`` inversion-recovery spin echo, magnitude:
      S = |PD·(1 − 2e^{−TI/T1} + 2e^{−(TR−TE/2)/T1} − e^{−TR/T1})·e^{−TE/T2}| (``flip`` unused).

    See :mod:`cmrlab.physics.signals` for the derivations.
    """
    if not isinstance(tissue, Tissue):
        raise ArgumentError(f"tissue must be a Tissue (see get_tissue), got {type(tissue).__name__}")
    check_choice("sequence", sequence, SEQUENCES)
    if sequence == "SE":
        s = signals.spin_echo_signal(tissue.PD, tissue.T1, tissue.T2, TR, TE)
    elif sequence == "GRE":
        s = signals.spoiled_gre_signal(tissue.PD, tissue.T1, tissue.T2star, TR, TE, flip)
    else:
        s = signals.inversion_recovery_signal(tissue.PD, tissue.T1, tissue.T2, TI, TR, TE, magnitude=True)
    return float(s)


# --------------------------------------------------------------------------------------------
# The explorer
# --------------------------------------------------------------------------------------------
def _label(name: str) -> str:
    short = {"white_matter": "WM", "grey_matter": "GM", "csf": "CSF", "gadolinium_enhanced": "tumour+Gd"}
    return short.get(name, name.replace("_", " "))


def _draw(
    fig: Figure,
    *,
    fractions: Mapping[str, np.ndarray],
    tissues: Mapping[str, Tissue],
    sequence: str,
    TR: float,
    TE: float,
    TI: float,
    flip: float,
) -> None:
    """Bar chart of the tissue signals (left) and the synthesized slice (right), or a message."""
    ax_bar, ax_img = fig.subplots(1, 2, width_ratios=[1.0, 1.25])
    timing = f"TR {TR:g} ms, TE {TE:g} ms" + (f", TI {TI:g} ms" if sequence == "IR" else "") + (
        f", flip {flip:g}°" if sequence == "GRE" else "")
    problem = timing_problem(sequence, TR, TE, TI)
    if problem is not None:
        for ax in (ax_bar, ax_img):
            ax.set_axis_off()
        fig.text(0.5, 0.5, f"{sequence}: {problem}.\nLengthen TR or shorten the other times.",
                 ha="center", va="center", fontsize=10)
        return
    values = {name: tissue_signal(t, sequence, TR, TE, TI, flip) for name, t in tissues.items()}
    names = list(values)
    ax_bar.bar(range(len(names)), [values[n] for n in names],
               color=[_COLOURS.get(n, f"C{i}") for i, n in enumerate(names)], edgecolor="black", linewidth=0.6)
    for i, n in enumerate(names):
        ax_bar.text(i, values[n] + 0.02, f"{values[n]:.2f}", ha="center", fontsize=8)
    ax_bar.set_xticks(range(len(names)), [_label(n) for n in names], fontsize=8)
    ax_bar.set_ylim(0, 1.0)
    ax_bar.set_ylabel("signal (fraction of water's M0)", fontsize=8)
    ranking = " > ".join(_label(n) for n in sorted(names, key=lambda n: -values[n]))
    ax_bar.set_title(f"{sequence}: {timing}\n{ranking}", fontsize=8)
    ax_bar.tick_params(labelsize=7)
    image = synthesize_slice(fractions, values)
    top = image.max()
    ax_img.imshow(image, cmap="gray", vmin=0, vmax=top if top > 0 else 1.0, interpolation="nearest")
    ax_img.set_title("simulated slice (windowed to its maximum)", fontsize=8)
    ax_img.set_axis_off()


def contrast_explorer(
    sequence: str = "SE",
    TR: float = 3500.0,
    TE: float = 13.0,
    TI: float = 2270.0,
    flip: float = 90.0,
    *,
    field_strength: float = 1.5,
    fractions: Mapping[str, np.ndarray] | None = None,
    z_mm: float = 18.0,
    voxel_mm: int = 2,
    animate: str = "TE",
    frames: int = 10,
) -> Explorer:
    """Sliders for the sequence (SE / GRE / IR), TR, TE, TI and flip angle → a bar chart of the
    tissue signals and the simulated brain slice Σ fraction × signal.

    The initial values are the arguments, rounded to whole ms and degrees (TR 5 … 10000 ms, TE
    1 … 250 ms, TI 0 … 4000 ms, flip 1 … 90°); the flip angle acts on the gradient echo only, TI
    on the inversion recovery only (spin echo and inversion recovery use 90° and 180° pulses). The
    tissues are those of ``fractions`` (default: white matter, grey matter and CSF of
    :func:`mni_tissue_fractions` at ``z_mm`` and ``voxel_mm``), with their values at
    ``field_strength`` from the tissue table; add e.g. a ``"tumour"`` map to see a lesion. The
    bars share one axis (0 … 1) so their heights compare between settings; the image is windowed
    to its own maximum, as a scanner display would be. On the static website the explorer
    sweeps ``animate`` (``"TE"``, ``"TR"``, ``"TI"``, ``"flip"`` or ``"sequence"``) over
    ``frames`` values. Timings a sequence cannot play out (TE > TR; TI + TE > TR) show a message
    instead of a figure.
    """
    sequence = check_choice("sequence", sequence, SEQUENCES)
    # the sliders' initial values, checked against their ranges and rounded to whole ms or degrees
    values = {name: int(round(check_number(name, v, *_RANGES[name])))
              for name, v in (("TR", TR), ("TE", TE), ("TI", TI), ("flip", flip))}
    check_choice("animate", animate, ("sequence", "TR", "TE", "TI", "flip"))
    if fractions is None:
        fractions = mni_tissue_fractions(z_mm, voxel_mm)
    _check_fractions(fractions)
    tissues = {name: get_tissue(name, field_strength) for name in fractions}
    fractions = {name: np.asarray(f, dtype=np.float64) for name, f in fractions.items()}

    def draw(fig: Figure, sequence: str, TR: float, TE: float, TI: float, flip: float) -> None:
        _draw(fig, fractions=fractions, tissues=tissues, sequence=sequence, TR=TR, TE=TE, TI=TI, flip=flip)

    controls = {
        "sequence": Choice([("spin echo", "SE"), ("spoiled gradient echo", "GRE"), ("inversion recovery", "IR")],
                           value=sequence, label="sequence"),
        "TR": Slider(*_RANGES["TR"], values["TR"], step=5, label="TR (ms)"),
        "TE": Slider(*_RANGES["TE"], values["TE"], step=1, label="TE (ms)"),
        "TI": Slider(*_RANGES["TI"], values["TI"], step=10, label="TI (ms, IR)"),
        "flip": Slider(*_RANGES["flip"], values["flip"], step=1, label="flip (°, GRE)"),
    }
    return Explorer(draw, controls, animate=animate, frames=frames, figsize=(8.0, 3.6),
                    title=f"Contrast at {field_strength:g} T", continuous_update=False)
