"""Tissue table: T1, T2, T2* (ms) and relative proton density at 1.5 T and 3 T.

``get_tissue("white_matter", 3.0)`` returns a :class:`Tissue`; ``TISSUES[name][field]`` holds all
of them. Every number carries the BibTeX keys (``book/references.bib``) of the work it comes from
in ``Tissue.references``; where a number is a representative choice rather than one study's
measurement, ``Tissue.note`` says so and how it was chosen. Relaxation times vary between
studies by 10–30 % (method, temperature, in vivo or ex vivo, magnetisation transfer), so treat
them as typical values for simulation, not as norms for diagnosis.

How the values were chosen
--------------------------
* **Brain (WM, GM, CSF)**: in vivo T1 at 1.5 T from Rooney et al. 2007 and at 3 T from Wansapura
  et al. 1999 (WM, GM) and Lu et al. 2005 (CSF); T2 at 3 T from Wansapura et al. 1999 and at
  1.5 T from Stanisz et al. 2005; T2* from Peters et al. 2007 (both fields, one study); PD from
  the water contents of Ernst et al. 1993.
* **Blood and myocardium**: in vivo T1 at both fields from Sharma et al. 2006 (one study);
  blood T2 from Stanisz et al. 2005 (human blood, 37 °C); myocardial T2 from Granitz et al. 2019
  (both fields) and T2* at 3 T from Roy et al. 2017.
* **Liver** from de Bazelaire et al. 2004, **fat** (subcutaneous) from Gold et al. 2004,
  **skeletal muscle** from Stanisz et al. 2005, all with both fields in one study.
* **Lung**: T2* from Yu et al. 2011 (both fields), PD from Theilmann et al. 2009 (at functional
  residual capacity), T1 near the 1.5 T values of Stadler et al. 2005.
* **T2* where no measurement is cited** is derived as 1/T2* = 1/T2 + R2' with a representative
  reversible rate R2' = 10 s⁻¹ at 1.5 T and 20 s⁻¹ at 3 T (voxel-scale field inhomogeneity grows
  in proportion to B0, as the R2* data of Peters et al. 2007 show). Real T2* depends on voxel
  size, shim and orientation.
* **Tumour and oedema** are representative values, not one study's: both have longer T1 and T2
  than white matter (T1-hypointense, T2- and FLAIR-hyperintense), as in the 3 T measurements of
  Badve et al. 2017.
* **Gadolinium-enhanced tissue** is the tumour with 0.3 mM Gd-DTPA in the tissue
  (:func:`with_gadolinium`): 1/T1 = 1/T1₀ + r1·C and 1/T2 = 1/T2₀ + r2·C (also for T2*), with
  the relaxivities of Gd-DTPA in plasma at 37 °C from Rohrer et al. 2005
  (r1 = 4.1 and 3.7, r2 = 4.6 and 5.2 L·mmol⁻¹·s⁻¹ at 1.5 and 3 T). 0.3 mM is a representative
  tissue concentration a few minutes after a standard 0.1 mmol/kg dose.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from cmrlab.errors import ArgumentError

__all__ = [
    "FIELD_STRENGTHS",
    "GADOLINIUM_RELAXIVITY",
    "TISSUES",
    "TISSUE_NAMES",
    "Tissue",
    "get_tissue",
    "with_gadolinium",
]

#: Field strengths (T) the table covers.
FIELD_STRENGTHS: tuple[float, ...] = (1.5, 3.0)

#: Relaxivities (L·mmol⁻¹·s⁻¹) of Gd-DTPA in human plasma at 37 °C, by field strength
#: (Rohrer et al. 2005): {field: (r1, r2)}.
GADOLINIUM_RELAXIVITY: Mapping[float, tuple[float, float]] = MappingProxyType({1.5: (4.1, 4.6), 3.0: (3.7, 5.2)})
#: Concentration (mmol/L) assumed in the gadolinium-enhanced tissue of the table.
ENHANCED_CONCENTRATION = 0.3

#: R2' (1/ms) used to derive T2* where the table cites no T2* measurement (see module notes).
_R2_PRIME = {1.5: 0.010, 3.0: 0.020}


@dataclass(frozen=True)
class Tissue:
    """Relaxation times (ms) and relative proton density of a tissue at one field strength.

    ``PD`` is the MR-visible proton density relative to pure water (water = 1). ``references``
    maps each of ``"T1"``, ``"T2"``, ``"T2star"``, ``"PD"`` to the BibTeX keys of its sources;
    ``note`` says which values are representative choices and how they were made.
    """

    name: str
    field_strength: float
    T1: float
    T2: float
    T2star: float
    PD: float
    references: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    note: str = ""

    def __post_init__(self) -> None:
        for key in ("T1", "T2", "T2star"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v > 0):
                raise ArgumentError(f"{key} of {self.name} must be a positive number, got {v!r}")
        if self.T2star > self.T2:
            raise ArgumentError(f"T2star of {self.name} must not exceed its T2")
        if not 0 <= self.PD <= 1.5:
            raise ArgumentError(f"PD of {self.name} must be in [0, 1.5], got {self.PD!r}")


def _t2star(T2: float, B0: float) -> float:
    """T2* from T2 with the table's representative R2' (rounded to 1 ms)."""
    return float(round(1.0 / (1.0 / T2 + _R2_PRIME[B0])))


_DERIVED = "T2* derived from T2 with the representative R2' (module notes)."

# name: {field: (T1, T2, T2star)}, PD, references, note
_TABLE: dict[str, dict] = {
    "blood": dict(
        values={1.5: (1580.0, 290.0, _t2star(290.0, 1.5)), 3.0: (1660.0, 275.0, _t2star(275.0, 3.0))},
        PD=0.85,
        references={"T1": ("sharma2006",), "T2": ("stanisz2005",), "T2star": ("stanisz2005", "peters2007"),
                    "PD": ()},
        note="Arterial blood pool. T1 in vivo; T2 of oxygenated human blood in vitro at 37 °C. "
        + _DERIVED + " PD representative (whole blood is about 80-85 % water).",
    ),
    "myocardium": dict(
        values={1.5: (1070.0, 55.8, 34.0), 3.0: (1220.0, 51.6, 24.0)},
        PD=0.80,
        references={"T1": ("sharma2006",), "T2": ("granitz2019",), "T2star": ("roy2017", "peters2007"),
                    "PD": ()},
        note="Native (pre-contrast) values of healthy myocardium. T2* at 3 T measured (roy2017); at "
        "1.5 T scaled from it assuming R2' proportional to B0 (normal values exceed 20 ms). "
        "PD representative (myocardium is about 80 % water).",
    ),
    "fat": dict(
        values={1.5: (288.0, 165.0, _t2star(165.0, 1.5)), 3.0: (371.0, 133.0, _t2star(133.0, 3.0))},
        PD=0.90,
        references={"T1": ("gold2004",), "T2": ("gold2004",), "T2star": ("gold2004", "peters2007"),
                    "PD": ()},
        note="Subcutaneous fat, main methylene peak only (no chemical-shift multiplet). " + _DERIVED
        + " PD representative.",
    ),
    "liver": dict(
        values={1.5: (586.0, 46.0, _t2star(46.0, 1.5)), 3.0: (809.0, 34.0, _t2star(34.0, 3.0))},
        PD=0.70,
        references={"T1": ("debazelaire2004",), "T2": ("debazelaire2004",),
                    "T2star": ("debazelaire2004", "peters2007"), "PD": ()},
        note=_DERIVED + " PD representative (liver is about 70 % water).",
    ),
    "lung": dict(
        values={1.5: (1250.0, 40.0, 2.11), 3.0: (1350.0, 35.0, 0.74)},
        PD=0.25,
        references={"T1": ("stadler2005",), "T2": (), "T2star": ("yu2011",), "PD": ("theilmann2009",)},
        note="Lung parenchyma, free breathing. T2* measured at both fields (yu2011); PD at "
        "functional residual capacity (theilmann2009). T1 representative: near the 1.5 T values "
        "of stadler2005, lengthened at 3 T. T2 representative (no human value cited): the lung "
        "signal is governed by its very short T2*, so T2 matters little.",
    ),
    "skeletal_muscle": dict(
        values={1.5: (1008.0, 44.0, _t2star(44.0, 1.5)), 3.0: (1412.0, 50.0, _t2star(50.0, 3.0))},
        PD=0.75,
        references={"T1": ("stanisz2005",), "T2": ("stanisz2005",), "T2star": ("stanisz2005", "peters2007"),
                    "PD": ()},
        note="Ex vivo at 37 °C (stanisz2005). " + _DERIVED + " PD representative.",
    ),
    "white_matter": dict(
        values={1.5: (656.0, 72.0, 66.2), 3.0: (832.0, 80.0, 53.2)},
        PD=0.65,
        references={
            1.5: {"T1": ("rooney2007",), "T2": ("stanisz2005",), "T2star": ("peters2007",), "PD": ("ernst1993",)},
            3.0: {"T1": ("wansapura1999",), "T2": ("wansapura1999",), "T2star": ("peters2007",),
                  "PD": ("ernst1993",)},
        },
        note="T1 in vivo (1.5 T: rooney2007; 3 T: wansapura1999, frontal WM). T2 at 1.5 T ex vivo "
        "(stanisz2005), at 3 T in vivo (wansapura1999, rounded).",
    ),
    "grey_matter": dict(
        values={1.5: (1188.0, 95.0, 84.0), 3.0: (1331.0, 110.0, 66.0)},
        PD=0.78,
        references={
            1.5: {"T1": ("rooney2007",), "T2": ("stanisz2005",), "T2star": ("peters2007",), "PD": ("ernst1993",)},
            3.0: {"T1": ("wansapura1999",), "T2": ("wansapura1999",), "T2star": ("peters2007",),
                  "PD": ("ernst1993",)},
        },
        note="Cortical grey matter. T1 in vivo (1.5 T: rooney2007; 3 T: wansapura1999). T2 at "
        "1.5 T ex vivo (stanisz2005), at 3 T in vivo (wansapura1999).",
    ),
    "csf": dict(
        values={1.5: (4070.0, 2200.0, _t2star(2200.0, 1.5)), 3.0: (3817.0, 2200.0, _t2star(2200.0, 3.0))},
        PD=0.97,
        references={
            b0: {"T1": (t1_ref,), "T2": ("haacke1999",), "T2star": ("haacke1999", "peters2007"), "PD": ("ernst1993",)}
            for b0, t1_ref in ((1.5, "rooney2007"), (3.0, "lu2005"))
        },
        note="T1 in vivo (1.5 T: rooney2007; 3 T: lu2005); CSF T1 hardly depends on field strength "
        "and the difference reflects the two studies. T2 is a representative textbook value for "
        "free fluid; in vivo estimates are lower because of partial volume and flow. " + _DERIVED,
    ),
    "tumour": dict(
        values={1.5: (1300.0, 120.0, _t2star(120.0, 1.5)), 3.0: (1700.0, 110.0, _t2star(110.0, 3.0))},
        PD=0.85,
        references={"T1": ("badve2017",), "T2": ("badve2017",), "T2star": ("badve2017", "peters2007"),
                    "PD": ()},
        note="Representative solid part of a high-grade glioma before contrast, not one study's "
        "measurement: longer T1 and T2 than white matter, as reported e.g. at 3 T by badve2017. "
        + _DERIVED + " PD representative (raised water content).",
    ),
    "oedema": dict(
        values={1.5: (1200.0, 150.0, _t2star(150.0, 1.5)), 3.0: (1500.0, 140.0, _t2star(140.0, 3.0))},
        PD=0.90,
        references={"T1": ("badve2017",), "T2": ("badve2017",), "T2star": ("badve2017", "peters2007"),
                    "PD": ()},
        note="Representative peritumoral (vasogenic) oedema, not one study's measurement: long T2 "
        "(bright on T2w and FLAIR) and long T1. " + _DERIVED + " PD representative.",
    ),
}


def with_gadolinium(tissue: Tissue, concentration: float, name: str | None = None) -> Tissue:
    """The tissue with ``concentration`` mmol/L of Gd-DTPA: relaxation rates add linearly::

        1/T1 = 1/T1₀ + r1·C,   1/T2 = 1/T2₀ + r2·C,   1/T2* = 1/T2*₀ + r2·C

    with r1, r2 from :data:`GADOLINIUM_RELAXIVITY` at the tissue's field strength (the T2*
    line ignores the extra susceptibility dephasing of a concentrated bolus).
    """
    if not (isinstance(concentration, (int, float)) and math.isfinite(concentration) and concentration >= 0):
        raise ArgumentError(f"concentration must be a number >= 0 (mmol/L), got {concentration!r}")
    r1, r2 = GADOLINIUM_RELAXIVITY[tissue.field_strength]
    c = concentration / 1000.0  # r·C in 1/ms
    refs = {k: tuple(dict.fromkeys(v + ("rohrer2005",))) if k != "PD" else v for k, v in tissue.references.items()}
    return replace(
        tissue,
        name=name or f"{tissue.name}+Gd",
        T1=1.0 / (1.0 / tissue.T1 + r1 * c),
        T2=1.0 / (1.0 / tissue.T2 + r2 * c),
        T2star=1.0 / (1.0 / tissue.T2star + r2 * c),
        references=MappingProxyType(refs),
        note=f"{tissue.note} With {concentration:g} mM Gd-DTPA (relaxivities from rohrer2005).".strip(),
    )


def _refs(refs: dict, b0: float) -> dict[str, tuple[str, ...]]:
    """A row's references: the same for both fields, or given per field ({1.5: {...}, 3.0: {...}})."""
    return dict(refs[b0]) if b0 in refs else dict(refs)


def _build() -> dict[str, dict[float, Tissue]]:
    table: dict[str, dict[float, Tissue]] = {}
    for name, row in _TABLE.items():
        table[name] = {
            b0: Tissue(name, b0, t1, t2, t2s, row["PD"], MappingProxyType(_refs(row["references"], b0)), row["note"])
            for b0, (t1, t2, t2s) in row["values"].items()
        }
    note = (
        f"Enhancing tumour: the 'tumour' entry with {ENHANCED_CONCENTRATION} mM Gd-DTPA (representative "
        "tissue concentration a few minutes after 0.1 mmol/kg); relaxivities of rohrer2005 (plasma, 37 °C)."
    )
    table["gadolinium_enhanced"] = {
        b0: replace(
            with_gadolinium(table["tumour"][b0], ENHANCED_CONCENTRATION, "gadolinium_enhanced"),
            note=f"{note} Tumour values: {table['tumour'][b0].note}",
        )
        for b0 in FIELD_STRENGTHS
    }
    return table


#: Every tissue at every field strength: ``TISSUES[name][field_strength]``.
TISSUES: Mapping[str, Mapping[float, Tissue]] = MappingProxyType(
    {k: MappingProxyType(v) for k, v in _build().items()}
)
#: The tissue names, in table order.
TISSUE_NAMES: tuple[str, ...] = tuple(TISSUES)

_ALIASES = {
    "wm": "white_matter", "gm": "grey_matter", "gray_matter": "grey_matter", "muscle": "skeletal_muscle",
    "tumor": "tumour", "edema": "oedema", "gd_enhanced": "gadolinium_enhanced", "heart": "myocardium",
}


def get_tissue(name: str, field_strength: float = 1.5) -> Tissue:
    """The :class:`Tissue` called ``name`` (see :data:`TISSUE_NAMES`; spaces, case and a few
    aliases such as ``"WM"``, ``"gray matter"``, ``"tumor"`` are accepted) at 1.5 or 3 T."""
    if not isinstance(name, str):
        raise ArgumentError(f"name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in TISSUES:
        raise ArgumentError(f"unknown tissue {name!r}: choose one of {', '.join(TISSUE_NAMES)}")
    try:
        b0 = float(field_strength)
    except (TypeError, ValueError):
        raise ArgumentError(f"field_strength must be a number, got {field_strength!r}") from None
    for known in FIELD_STRENGTHS:
        if abs(b0 - known) < 1e-9:
            return TISSUES[key][known]
    raise ArgumentError(f"field_strength must be one of {FIELD_STRENGTHS} T, got {field_strength!r}")
