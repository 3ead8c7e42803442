"""Bloch simulation (cmrlab.physics.bloch) checked against closed forms (cmrlab.physics.signals)."""
import math

import numpy as np
import pytest
import torch

from cmrlab.errors import ArgumentError
from cmrlab.physics import bloch, signals
from cmrlab.physics.bloch import (
    bssfp_steady_state,
    equilibrium,
    free_precession,
    gradient_dephasing,
    gradient_echo,
    gradient_frequency,
    inversion_recovery,
    precession_matrices,
    profile_fwhm,
    rf_rotation_matrix,
    rotate_rf,
    simulate,
    simulate_pulse,
    sinc_pulse,
    slice_thickness,
    spin_echo,
    t2star_offsets,
)


# ------------------------------------------------------------------ elementary operations
def test_rf_pulse_conventions():
    z = equilibrium()
    assert np.allclose(rotate_rf(z, 90.0), [0, 1, 0], atol=1e-15)  # phase 0: +z -> +y
    assert np.allclose(rotate_rf(z, 90.0, phase=90.0), [-1, 0, 0], atol=1e-15)  # B1 along y: +z -> -x
    assert np.allclose(rotate_rf(z, 180.0), [0, 0, -1], atol=1e-15)  # inversion
    R = rf_rotation_matrix(np.array([30.0, 120.0]), np.array([10.0, -45.0]))
    assert R.shape == (2, 3, 3)
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-14)  # rotations
    assert np.allclose(np.linalg.det(R), 1.0)
    m = np.array([0.3, -0.2, 0.9])
    assert np.allclose(R[1] @ m, rotate_rf(m, 120.0, -45.0), atol=1e-14)


def test_free_precession_is_exact_and_clockwise():
    m = np.array([1.0, 0.0, 0.0])
    # a quarter turn at 250 Hz takes 1 ms; positive df precesses from +x to -y
    assert np.allclose(free_precession(m, 1.0, math.inf, math.inf, df=250.0), [0, -1, 0], atol=1e-12)
    out = free_precession(np.array([0.6, 0.0, -0.5]), 40.0, 800.0, 60.0, df=0.0, M0=0.9)
    assert out[0] == pytest.approx(0.6 * math.exp(-40 / 60))
    assert out[2] == pytest.approx(-0.5 * math.exp(-40 / 800) + 0.9 * (1 - math.exp(-40 / 800)))
    A, B = precession_matrices(3.0, 900.0, 70.0, df=37.0, M0=1.0)
    m = np.array([0.2, 0.5, 0.4])
    assert np.allclose(A @ m + B, free_precession(m, 3.0, 900.0, 70.0, df=37.0), atol=1e-15)


def test_gradient_dephasing_and_rewinding():
    assert gradient_frequency(1.0, 10.0) == pytest.approx(425.77478518)  # Hz at 1 mm, 10 mT/m
    r = np.stack([np.zeros(5), np.zeros(5), np.linspace(-2, 2, 5)], axis=-1)
    f = gradient_frequency(r, np.array([0.0, 0.0, 10.0]))
    assert np.allclose(f, 425.77478518 * np.linspace(-2, 2, 5))
    m = np.broadcast_to(rotate_rf(equilibrium(), 90.0), (5, 3))
    twisted = gradient_dephasing(m, r[:, 2], 10.0, 1.0)
    assert np.abs(twisted[:, :2].mean(0)).max() < 0.5  # the net transverse signal is lost
    back = gradient_dephasing(twisted, r[:, 2], -10.0, 1.0)  # opposite lobe, same area
    assert np.allclose(back, m, atol=1e-12)


# ------------------------------------------------------------------ relaxation (the Bloch explorer)
def test_t1_recovery_and_t2_decay_by_simulation():
    tr = simulate(T1=1000.0, T2=100.0, duration=1000.0, flip=90.0, n_steps=1000)
    assert tr.M.shape == (1002, 3) and tr.t[0] == 0.0 and tr.t[1] == 0.0 and tr.t[-1] == 1000.0
    assert tr.mz[0] == 1.0 and abs(tr.mz[1]) < 1e-15  # before and after the 90° pulse
    assert tr.at(1000.0)[2] == pytest.approx(1 - math.exp(-1), rel=1e-12)  # 63.2 % at t = T1
    assert tr.mxy[tr.index(100.0)] == pytest.approx(math.exp(-1), rel=1e-12)  # 36.8 % at t = T2
    assert round(float(tr.at(1000.0)[2]) * 100, 1) == 63.2


def test_t2star_spread_makes_fid_decay_with_t2star():
    offs = t2star_offsets(100.0, 20.0, n=8)
    assert offs.shape == (8,) and np.allclose(offs, -offs[::-1])  # symmetric quantiles
    tr = simulate(1000.0, 100.0, duration=60.0, T2star=20.0, n_isochromats=1000, n_steps=60)
    t = tr.t[2:]
    assert np.abs(tr.mxy[2:] - np.exp(-t / 20.0)).max() < 0.01  # e^{-t/T2*}, not e^{-t/T2}
    uniform = simulate(1000.0, 100.0, duration=30.0, T2star=20.0, distribution="uniform", n_steps=30)
    g = (1 / 20 - 1 / 100) * 1000 / (2 * math.pi)  # half-width (Hz)
    x = 2 * math.pi * g * 0.030
    assert uniform.mxy[-1] == pytest.approx(math.exp(-30 / 100) * math.sin(x) / x, abs=0.01)


# ------------------------------------------------------------------ spin echo: refocusing T2* but not T2
def test_spin_echo_refocuses_t2star_not_t2():
    T1, T2, T2s, TE = 1000.0, 100.0, 20.0, 60.0
    se = spin_echo(T1, T2, TE, T2star=T2s, n_isochromats=500)
    echo = se.mxy[se.index(TE)]
    assert echo == pytest.approx(math.exp(-TE / T2), rel=1e-9)  # full refocusing of the spread
    assert se.at(TE)[1] == pytest.approx(math.exp(-TE / T2), rel=1e-9)  # echo along +y
    fid = simulate(T1, T2, duration=TE, T2star=T2s, n_isochromats=500, n_steps=60)
    assert fid.mxy[-1] == pytest.approx(math.exp(-TE / T2s), abs=0.01)
    assert fid.mxy[-1] < 0.15 * echo  # without the 180°, the signal at TE is much smaller
    assert se.mxy[se.index(TE / 2) - 1] < 0.25  # dephased just before the 180°
    assert echo < 0.6  # ... and T2 decay is not undone


# ------------------------------------------------------------------ steady states vs closed forms
@pytest.mark.parametrize("T1, T2, TR, flip, df", [(1200.0, 250.0, 3.0, 60.0, 0.0), (1000.0, 50.0, 3.5, 45.0, 0.0),
                                                  (1000.0, 60.0, 3.0, 30.0, 60.0)])
def test_bssfp_steady_state_matches_closed_form(T1, T2, TR, flip, df):
    sim = bssfp_steady_state(T1, T2, TR=TR, flip=flip, df=df)
    closed = signals.bssfp_signal(1.0, T1, T2, TR=TR, flip=flip, df=df)
    assert abs(sim[-1] / closed - 1) < 0.01
    assert abs(sim[-1] / closed - 1) < 1e-3  # in fact much closer than the 1 % asked for
    assert abs(sim[0] - math.sin(math.radians(flip)) * math.exp(-TR / 2 / T2)) < 1e-12  # first echo


def test_bssfp_vectorised_over_tissues():
    T1 = torch.tensor([1580.0, 1070.0], dtype=torch.float64)
    T2 = torch.tensor([290.0, 55.8], dtype=torch.float64)
    sim = bssfp_steady_state(T1, T2, TR=3.0, flip=60.0)
    assert isinstance(sim, torch.Tensor) and sim.shape[1:] == (2,)
    closed = signals.bssfp_signal(1.0, T1, T2, TR=3.0, flip=60.0)
    assert torch.allclose(sim[-1], closed, rtol=1e-3)


@pytest.mark.parametrize("T1, T2, TR, TE, flip", [(1000.0, 50.0, 10.0, 4.0, 15.0), (800.0, 80.0, 20.0, 5.0, 30.0)])
def test_spoiled_gre_ideal_spoiling_matches_closed_form(T1, T2, TR, TE, flip):
    sim = gradient_echo(T1, T2, TR, TE, flip)
    assert sim[-1] == pytest.approx(signals.spoiled_gre_signal(1.0, T1, T2, TR, TE, flip), rel=1e-4)
    sim_star = gradient_echo(T1, T2, TR, TE, flip, T2star=T2 / 2, n_isochromats=500)
    assert sim_star[-1] == pytest.approx(signals.spoiled_gre_signal(1.0, T1, T2 / 2, TR, TE, flip), rel=0.01)


def test_rf_spoiling_approaches_ideal_spoiling():
    T1, T2, TR, TE, flip = 1000.0, 50.0, 10.0, 4.0, 15.0
    ideal = signals.spoiled_gre_signal(1.0, T1, T2, TR, TE, flip)
    rf = gradient_echo(T1, T2, TR, TE, flip, spoiling="rf", n_isochromats=100)[-1]
    gradient_only = gradient_echo(T1, T2, TR, TE, flip, spoiling="rf", rf_increment=0.0, n_isochromats=100)[-1]
    assert abs(rf / ideal - 1) < 0.03
    assert abs(gradient_only / ideal - 1) > 0.3  # without the quadratic RF phase, spoiling fails


def test_inversion_recovery_matches_closed_form_and_nulls():
    T1, T2, TR, TE = 4000.0, 2000.0, 8000.0, 140.0
    TI = np.array([500.0, 2000.0, 3000.0])
    sim = inversion_recovery(T1, T2, TI, TR, TE, n_TR=3)
    assert sim.shape == (3, 3)
    # first TR from equilibrium: TR = inf form; afterwards the steady state
    assert np.allclose(sim[0], signals.inversion_recovery_signal(1, T1, T2, TI, math.inf, TE), atol=1e-12)
    assert np.allclose(sim[-1], signals.inversion_recovery_signal(1, T1, T2, TI, TR, TE), atol=1e-12)
    assert sim[-1, 0] < 0 < sim[-1, 2]  # the signed signal changes sign ...
    ti0 = signals.ir_null_time(T1, TR, TE)
    assert abs(inversion_recovery(T1, T2, ti0, TR, TE)[-1]) < 1e-12  # ... exactly at the null time
    # FLAIR, TR >> T1: null at T1 ln 2
    assert abs(inversion_recovery(900.0, 90.0, 900.0 * math.log(2), 1e6, 0.0)[-1]) < 1e-12


# ------------------------------------------------------------------ slice selection
def test_sinc_pulse_area_and_bandwidth():
    p = sinc_pulse(flip=90.0, duration=2.0, time_bandwidth=4.0, n_samples=256)
    assert p.bandwidth == pytest.approx(2000.0)
    area = bloch.GAMMA * (p.b1 * 1e-6).sum() * p.dt * 1e-3
    assert area == pytest.approx(math.pi / 2, rel=1e-12)
    assert p.t[0] == pytest.approx(-p.t[-1])


def test_slice_profile_width_matches_bandwidth_over_gamma_g():
    p = sinc_pulse(flip=30.0, duration=2.0, time_bandwidth=4.0, n_samples=200)
    z = np.linspace(-12.0, 12.0, 961)
    expected = slice_thickness(p.bandwidth, 10.0)
    assert expected == pytest.approx(2000.0 / 425.77478518)  # 4.70 mm
    M = simulate_pulse(p, z, 10.0)
    profile = np.hypot(M[:, 0], M[:, 1])
    assert profile_fwhm(z, profile) == pytest.approx(expected, rel=0.02)
    assert profile.max() == pytest.approx(math.sin(math.radians(30)), rel=1e-3)
    # a steeper gradient gives a thinner slice, in proportion
    M2 = simulate_pulse(p, z, 20.0)
    assert profile_fwhm(z, np.hypot(M2[:, 0], M2[:, 1])) == pytest.approx(expected / 2, rel=0.02)
    # a 90° pulse: the profile broadens (sin of the flip profile), still within 10 %
    p90 = sinc_pulse(flip=90.0, duration=2.0, time_bandwidth=4.0, n_samples=200)
    M90 = simulate_pulse(p90, z, 10.0)
    assert profile_fwhm(z, np.hypot(M90[:, 0], M90[:, 1])) == pytest.approx(expected, rel=0.10)
    assert np.hypot(M90[480, 0], M90[480, 1]) == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------ differentiability and devices
def test_gradients_flow_to_t1_t2_and_flip():
    T1 = torch.tensor(1200.0, dtype=torch.float64, requires_grad=True)
    T2 = torch.tensor(100.0, dtype=torch.float64, requires_grad=True)
    fa = torch.tensor(50.0, dtype=torch.float64, requires_grad=True)
    sim = bssfp_steady_state(T1, T2, TR=3.0, flip=fa, n_TR=3000)[-1]
    grads_sim = torch.autograd.grad(sim, (T1, T2, fa))
    closed = signals.bssfp_signal(1.0, T1, T2, TR=3.0, flip=fa)
    grads_closed = torch.autograd.grad(closed, (T1, T2, fa))
    for gs, gc in zip(grads_sim, grads_closed):
        assert gs.item() == pytest.approx(gc.item(), rel=0.01)
    # the explorer too: d Mz(t)/d T1 = -(t/T1^2) e^{-t/T1} after a 90° pulse
    tr = simulate(T1, T2, duration=500.0, flip=fa, n_steps=50)
    (g,) = torch.autograd.grad(tr.mz[-1], (T1,))
    expected = -(1 - math.cos(math.radians(50))) * (500 / 1200**2) * math.exp(-500 / 1200)
    assert g.item() == pytest.approx(expected, rel=1e-9)


def test_array_rule_and_float32():
    tr = simulate(torch.tensor([800.0, 1000.0]), torch.tensor(80.0), duration=100.0, n_steps=10)
    assert isinstance(tr.M, torch.Tensor) and tr.M.dtype == torch.float32 and tr.M.shape == (12, 2, 3)
    tr = simulate(np.array([800.0, 1000.0]), 80.0, duration=100.0, n_steps=10)
    assert isinstance(tr.M, np.ndarray) and tr.M.dtype == np.float64
    net = simulate(800.0, 80.0, duration=10.0, df=np.linspace(-50, 50, 1000), n_steps=5, net=True)
    assert net.M.shape == (7, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    T1 = torch.tensor([900.0, 1200.0], device="cuda")
    sim = bssfp_steady_state(T1, 100.0, TR=3.0, flip=60.0)
    assert sim.device.type == "cuda"
    closed = signals.bssfp_signal(1.0, T1, 100.0, TR=3.0, flip=60.0)
    assert torch.allclose(sim[-1], closed, rtol=2e-3)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: simulate(-1.0, 100.0, duration=10.0), "T1"),
        (lambda: simulate(1000.0, 0.0, duration=10.0), "T2"),
        (lambda: simulate(1000.0, 100.0, duration=10.0, flip=float("nan")), "flip"),
        (lambda: simulate(1000.0, 100.0, duration=-5.0), "duration"),
        (lambda: simulate(1000.0, 100.0, duration=10.0, n_steps=0), "n_steps"),
        (lambda: simulate(1000.0, 50.0, duration=10.0, T2star=80.0), "T2star"),
        (lambda: rotate_rf(np.zeros(3), np.array([10.0, np.nan])), "flip"),
        (lambda: rotate_rf(np.zeros(4), 10.0), "M"),
        (lambda: free_precession(np.zeros(3), 1.0, 900.0, -3.0), "T2"),
        (lambda: gradient_echo(900.0, 50.0, 10.0, 20.0, 15.0), "TE"),
        (lambda: gradient_echo(900.0, 50.0, 10.0, 4.0, 15.0, spoiling="magic"), "spoiling"),
        (lambda: inversion_recovery(900.0, 50.0, 700.0, 500.0, 20.0), "TR"),
        (lambda: bssfp_steady_state(900.0, 50.0, TR=0.0, flip=60.0), "TR"),
        (lambda: sinc_pulse(duration=0.0), "duration"),
        (lambda: slice_thickness(2000.0, 0.0), "gradient"),
        (lambda: t2star_offsets(100.0, 20.0, distribution="gauss"), "distribution"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ArgumentError, match=name):
        call()
