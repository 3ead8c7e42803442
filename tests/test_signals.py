"""Closed-form signal equations, constants and the tissue table (cmrlab.physics.signals/constants/tissues)."""
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cmrlab.errors import ArgumentError
from cmrlab.physics import constants, signals, tissues
from cmrlab.physics.constants import larmor_frequency
from cmrlab.physics.signals import (
    bssfp_signal,
    ernst_angle,
    flair_signal,
    inversion_recovery_signal,
    ir_null_time,
    longitudinal_recovery,
    spin_echo_signal,
    spoiled_gre_signal,
    transverse_decay,
)
from cmrlab.physics.tissues import FIELD_STRENGTHS, TISSUE_NAMES, TISSUES, get_tissue, with_gadolinium

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ constants
def test_larmor_frequency_at_clinical_fields():
    assert round(larmor_frequency(1.5) / 1e6, 2) == 63.87
    assert round(larmor_frequency(3.0) / 1e6, 1) == 127.7
    assert constants.GAMMA_BAR == pytest.approx(42.577478518e6, rel=1e-12)
    assert constants.GAMMA == pytest.approx(2.6752218744e8, rel=1e-9)


def test_larmor_follows_the_array_rule():
    f = larmor_frequency(np.array([1.5, 3.0]))
    assert isinstance(f, np.ndarray) and f.dtype == np.float64
    t = larmor_frequency(torch.tensor([1.5, 3.0], dtype=torch.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert isinstance(larmor_frequency(1.5), np.floating)


def test_larmor_bad_input():
    with pytest.raises(ArgumentError, match="B0"):
        larmor_frequency(-1.0)
    with pytest.raises(ArgumentError, match="B0"):
        larmor_frequency(float("nan"))


# ------------------------------------------------------------------ relaxation
def test_t1_recovery_and_t2_decay_at_one_time_constant():
    assert longitudinal_recovery(900.0, 900.0) == pytest.approx(1 - math.exp(-1))  # 63.2 %
    assert round(float(longitudinal_recovery(900.0, 900.0)) * 100, 1) == 63.2
    # the correct T2 definition: Mxy has decayed TO 36.8 % (lost 63.2 %) at t = T2
    assert round(float(transverse_decay(80.0, 80.0)) * 100, 1) == 36.8
    # after an inversion Mz crosses zero at T1 ln 2
    assert longitudinal_recovery(1000 * math.log(2), 1000.0, Mz0=-1.0) == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ spin echo
def test_spin_echo_simple_and_exact_forms():
    pd, t1, t2, tr, te = 0.8, 900.0, 90.0, 500.0, 20.0
    simple = spin_echo_signal(pd, t1, t2, tr, te)
    assert simple == pytest.approx(pd * (1 - math.exp(-tr / t1)) * math.exp(-te / t2))
    exact = spin_echo_signal(pd, t1, t2, tr, te, exact=True)
    assert exact == pytest.approx(
        pd * (1 - 2 * math.exp(-(tr - te / 2) / t1) + math.exp(-tr / t1)) * math.exp(-te / t2)
    )
    # the two agree when TE << TR and differ for a long TE
    assert spin_echo_signal(1, t1, t2, 3000.0, 2.0, exact=True) == pytest.approx(
        spin_echo_signal(1, t1, t2, 3000.0, 2.0), rel=2e-3
    )
    assert exact < simple


def test_spin_echo_brain_contrast_t1w_and_t2w():
    """The brain thesis's protocols: T1w SE 340/13 (WM > GM > CSF), T2w 3500/120 (CSF > GM > WM)."""
    def sig(name, tr, te):
        t = get_tissue(name, 1.5)
        return spin_echo_signal(t.PD, t.T1, t.T2, tr, te)

    wm, gm, csf = (sig(n, 340.0, 13.0) for n in ("white_matter", "grey_matter", "csf"))
    assert wm > gm > csf
    wm, gm, csf = (sig(n, 3500.0, 120.0) for n in ("white_matter", "grey_matter", "csf"))
    assert csf > gm > wm


# ------------------------------------------------------------------ spoiled GRE and the Ernst angle
def test_spoiled_gre_formula_and_ernst_angle_is_the_maximum():
    t1, tr = 1000.0, 10.0
    e1 = math.exp(-tr / t1)
    assert ernst_angle(tr, t1) == pytest.approx(math.degrees(math.acos(e1)))
    assert ernst_angle(tr, t1) == pytest.approx(8.09, abs=0.01)
    a = math.radians(20)
    expected = 0.9 * math.sin(a) * (1 - e1) / (1 - math.cos(a) * e1) * math.exp(-4 / 30)
    assert spoiled_gre_signal(0.9, t1, 30.0, tr, 4.0, 20.0) == pytest.approx(expected)
    flips = np.linspace(0.5, 40, 4000)
    s = spoiled_gre_signal(1.0, t1, 50.0, tr, 2.0, flips)
    assert flips[np.argmax(s)] == pytest.approx(ernst_angle(tr, t1), abs=0.02)


def test_ernst_angle_maximises_via_autograd():
    fa = torch.tensor(float(ernst_angle(8.0, 800.0)), dtype=torch.float64, requires_grad=True)
    spoiled_gre_signal(1.0, 800.0, 40.0, 8.0, 3.0, fa).backward()
    assert abs(fa.grad.item()) < 1e-10


# ------------------------------------------------------------------ inversion recovery, FLAIR
def test_ir_null_time_long_tr_is_t1_ln2():
    assert ir_null_time(4000.0) == pytest.approx(4000 * math.log(2))
    assert ir_null_time(4000.0, TR=1e7) == pytest.approx(4000 * math.log(2), rel=1e-9)
    assert inversion_recovery_signal(1, 4000.0, 2000.0, 4000 * math.log(2)) == pytest.approx(0, abs=1e-12)


def test_ir_null_time_general_form_and_flair_range():
    t1, tr = 4000.0, 8000.0
    assert ir_null_time(t1, tr) == pytest.approx(t1 * math.log(2 / (1 + math.exp(-tr / t1))))
    # FLAIR (TR 8000, TE 140): the CSF null falls in the thesis's TI range 2000-2500 ms at 1.5 and 3 T
    for b0 in FIELD_STRENGTHS:
        ti = ir_null_time(get_tissue("csf", b0).T1, 8000.0, 140.0)
        assert 2000.0 < ti < 2500.0
        assert inversion_recovery_signal(1, get_tissue("csf", b0).T1, 100.0, ti, 8000.0, 140.0) == pytest.approx(
            0, abs=1e-12
        )
    assert ir_null_time(t1, tr) < t1 * math.log(2)  # incomplete recovery: it nulls earlier


def test_inversion_recovery_signal_form_and_sign():
    pd, t1, t2, ti, tr, te = 1.0, 800.0, 80.0, 300.0, 2500.0, 20.0
    expected = (1 - 2 * math.exp(-ti / t1) + 2 * math.exp(-(tr - te / 2) / t1) - math.exp(-tr / t1)) * math.exp(
        -te / t2
    )
    assert inversion_recovery_signal(pd, t1, t2, ti, tr, te) == pytest.approx(expected)
    assert expected < 0  # before the null the signal is negative ...
    assert inversion_recovery_signal(pd, t1, t2, ti, tr, te, magnitude=True) == pytest.approx(-expected)


def test_flair_suppresses_csf_but_not_oedema():
    csf, oedema, wm = (get_tissue(n, 1.5) for n in ("csf", "oedema", "white_matter"))
    kw = dict(TR=8000.0, TE=140.0, T1_null=csf.T1)
    s_csf = flair_signal(csf.PD, csf.T1, csf.T2, **kw)
    s_oed = flair_signal(oedema.PD, oedema.T1, oedema.T2, **kw)
    s_wm = flair_signal(wm.PD, wm.T1, wm.T2, **kw)
    assert s_csf == pytest.approx(0.0, abs=1e-12)
    assert s_oed > s_wm > 0.05
    with pytest.raises(ArgumentError, match="TI"):
        flair_signal(1, 1000.0, 100.0)


# ------------------------------------------------------------------ bSSFP
def test_bssfp_on_resonance_matches_standard_formula():
    pd, t1, t2, tr, fa = 0.9, 1200.0, 250.0, 3.2, 60.0
    e1, e2, a = math.exp(-tr / t1), math.exp(-tr / t2), math.radians(fa)
    standard = pd * math.sin(a) * (1 - e1) * math.sqrt(e2) / (1 - (e1 - e2) * math.cos(a) - e1 * e2)
    assert bssfp_signal(pd, t1, t2, TR=tr, flip=fa) == pytest.approx(standard, rel=1e-12)
    # TR << T1, T2 limit: sin a / (1 + cos a + (1 - cos a) T1/T2)
    lim = math.sin(a) / (1 + math.cos(a) + (1 - math.cos(a)) * t1 / t2)
    assert bssfp_signal(1.0, t1, t2, TR=0.01, flip=fa, TE=0.0) == pytest.approx(lim, rel=1e-3)


def test_bssfp_banding():
    tr = 4.0
    on = bssfp_signal(1, 1000.0, 100.0, TR=tr, flip=50.0)
    band = bssfp_signal(1, 1000.0, 100.0, TR=tr, flip=50.0, df=1000 / (2 * tr))  # df = 1/(2 TR)
    period = bssfp_signal(1, 1000.0, 100.0, TR=tr, flip=50.0, df=1000 / tr)  # one full cycle per TR
    assert band < 0.1 * on
    assert period == pytest.approx(on, rel=1e-9)


def test_blood_brighter_than_myocardium_on_bssfp():
    blood, myo = get_tissue("blood", 1.5), get_tissue("myocardium", 1.5)
    s_b = bssfp_signal(blood.PD, blood.T1, blood.T2, TR=3.0, flip=60.0)
    s_m = bssfp_signal(myo.PD, myo.T1, myo.T2, TR=3.0, flip=60.0)
    assert s_b > 2 * s_m


# ------------------------------------------------------------------ array rule and gradients
def test_broadcasting_and_types():
    s = spin_echo_signal(np.array([1.0, 0.8]), np.array([[900.0], [1200.0]]), 90.0, 500.0, 20.0)
    assert isinstance(s, np.ndarray) and s.shape == (2, 2)
    t1 = torch.tensor([900.0, 1200.0], dtype=torch.float32)
    st = spin_echo_signal(1.0, t1, 90.0, 500.0, 20.0)
    assert isinstance(st, torch.Tensor) and st.dtype == torch.float32


def test_gradients_match_analytic_derivatives():
    t1 = torch.tensor(900.0, dtype=torch.float64, requires_grad=True)
    t2 = torch.tensor(90.0, dtype=torch.float64, requires_grad=True)
    tr, te = 500.0, 20.0
    spin_echo_signal(1.0, t1, t2, tr, te).backward()
    # dS/dT1 = -(TR/T1^2) e^{-TR/T1} e^{-TE/T2};  dS/dT2 = (1 - e^{-TR/T1}) (TE/T2^2) e^{-TE/T2}
    d1 = -(tr / 900.0**2) * math.exp(-tr / 900.0) * math.exp(-te / 90.0)
    d2 = (1 - math.exp(-tr / 900.0)) * (te / 90.0**2) * math.exp(-te / 90.0)
    assert t1.grad.item() == pytest.approx(d1, rel=1e-10)
    assert t2.grad.item() == pytest.approx(d2, rel=1e-10)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: spin_echo_signal(1, -5.0, 90.0, 500.0, 20.0), "T1"),
        (lambda: spin_echo_signal(1, 900.0, 0.0, 500.0, 20.0), "T2"),
        (lambda: spin_echo_signal(1, 900.0, 90.0, 500.0, 600.0), "TE"),
        (lambda: spoiled_gre_signal(1, 900.0, 30.0, 10.0, 4.0, float("nan")), "flip"),
        (lambda: spoiled_gre_signal(1, 900.0, 30.0, 0.0, 0.0, 10.0), "TR"),
        (lambda: bssfp_signal(1, 900.0, np.array([50.0, np.nan]), TR=3.0, flip=60.0), "T2"),
        (lambda: inversion_recovery_signal(1, 900.0, 90.0, 700.0, 500.0, 20.0), "TR"),
        (lambda: ir_null_time(0.0), "T1"),
        (lambda: spin_echo_signal(-1.0, 900.0, 90.0, 500.0, 20.0), "PD"),
        (lambda: spin_echo_signal("abc", 900.0, 90.0, 500.0, 20.0), "PD"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ------------------------------------------------------------------ tissues
REQUIRED = [
    "blood", "myocardium", "fat", "liver", "lung", "skeletal_muscle", "white_matter", "grey_matter",
    "csf", "tumour", "oedema", "gadolinium_enhanced",
]


def test_tissue_table_is_complete_with_references():
    assert set(REQUIRED) <= set(TISSUE_NAMES)
    for name in REQUIRED:
        for b0 in (1.5, 3.0):
            t = TISSUES[name][b0]
            assert t.field_strength == b0 and t.name == name
            assert 0 < t.T2star <= t.T2 < t.T1
            assert 0 < t.PD <= 1.0
            for param in ("T1", "T2", "T2star", "PD"):
                keys = t.references[param]
                # every value has a literature key, or the note says it is a representative choice
                assert keys or f"{param} representative" in t.note, (name, b0, param)


def test_every_reference_key_has_a_bibtex_entry():
    bib = (REPO / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,\s]+),", bib))
    used = {k for name in TISSUE_NAMES for b0 in FIELD_STRENGTHS for ks in TISSUES[name][b0].references.values()
            for k in ks}
    assert used, "the table cites nothing"
    missing = used - keys
    assert not missing, f"BibTeX entries missing for {sorted(missing)}"


def test_field_dependence_t1_grows_t2star_shrinks():
    for name in ("white_matter", "grey_matter", "liver", "fat", "myocardium", "skeletal_muscle"):
        lo, hi = TISSUES[name][1.5], TISSUES[name][3.0]
        assert hi.T1 > lo.T1
        assert hi.T2star < lo.T2star


def test_gadolinium_shortens_t1_by_relaxivity():
    tumour = get_tissue("tumour", 1.5)
    gd = get_tissue("gadolinium_enhanced", 1.5)
    r1, r2 = tissues.GADOLINIUM_RELAXIVITY[1.5]
    c = tissues.ENHANCED_CONCENTRATION
    assert 1000 / gd.T1 == pytest.approx(1000 / tumour.T1 + r1 * c)  # rates in 1/s
    assert 1000 / gd.T2 == pytest.approx(1000 / tumour.T2 + r2 * c)
    assert "rohrer2005" in gd.references["T1"]
    # T1-weighted: the enhanced tumour is brighter than white matter, the plain tumour darker
    wm = get_tissue("white_matter", 1.5)
    t1w = [spin_echo_signal(t.PD, t.T1, t.T2, 340.0, 13.0) for t in (tumour, wm, gd)]
    assert t1w[0] < t1w[1] < t1w[2]
    assert with_gadolinium(wm, 0.0).T1 == pytest.approx(wm.T1)
    with pytest.raises(ArgumentError, match="concentration"):
        with_gadolinium(wm, -1.0)


def test_get_tissue_aliases_and_errors():
    assert get_tissue("WM", 3) is TISSUES["white_matter"][3.0]
    assert get_tissue("gray matter").name == "grey_matter"
    assert get_tissue("Tumor", 1.5).name == "tumour"
    with pytest.raises(ArgumentError, match="unknown tissue"):
        get_tissue("spleen")
    with pytest.raises(ArgumentError, match="field_strength"):
        get_tissue("csf", 7.0)
    with pytest.raises(ArgumentError, match="T2star"):
        tissues.Tissue("x", 1.5, 1000.0, 50.0, 60.0, 1.0)


def test_signals_module_exports():
    for name in signals.__all__:
        assert callable(getattr(signals, name))
