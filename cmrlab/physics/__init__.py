"""MRI physics simulator: Bloch simulation, signal equations, tissues, k-space, coils, noise, artifacts.

Everything is written in torch, so it runs on a GPU and can be differentiated (gradients flow to
T1, T2, flip angles …), and accepts NumPy input: torch in → torch out on the same device, NumPy
(or plain numbers) in → NumPy out.

Modules (import the one you need, e.g. ``from cmrlab.physics import bloch``):

``constants``  γ, the Larmor frequency, units (ms, Hz, degrees, mm, mT/m) and the array rule
``bloch``      Bloch simulation of many isochromats: hard and sinc pulses, free precession,
               gradients, T2* spreads; spin echo, spoiled gradient echo, inversion recovery and
               bSSFP driven to steady state; the Bloch explorer's ``simulate``
``signals``    closed-form signal equations (spin echo, spoiled GRE and the Ernst angle,
               inversion recovery / FLAIR and the null time, bSSFP)
``tissues``    T1, T2, T2*, PD at 1.5 T and 3 T with literature references; gadolinium
``kspace``     centred FFTs, sampling at a FOV and matrix, masks, partial Fourier
``coils``      coil sensitivity maps, RSS and SENSE combination
``noise``      complex Gaussian noise at a target SNR, NEX averaging, SNR measurement
``artifacts``  Gibbs ringing, motion, k-space spikes, bias fields
``cardiac``    the cardiac cycle's LV volume curve and the biomarkers (SV, CO, EF, BSA, VI,
               wall thickening, LV mass) with the thesis's normal ranges

The most used names of the Bloch, signal and tissue modules are also available here.
"""
from cmrlab.physics import (
    artifacts,
    bloch,
    cardiac,
    coils,
    constants,
    kspace,
    noise,
    signals,
    tissues,
)
from cmrlab.physics.bloch import (
    RFPulse,
    Trajectory,
    bssfp_steady_state,
    free_precession,
    gradient_echo,
    inversion_recovery,
    rotate_rf,
    simulate,
    simulate_pulse,
    sinc_pulse,
    slice_thickness,
    spin_echo,
)
from cmrlab.physics.constants import GAMMA, GAMMA_BAR, larmor_frequency
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
from cmrlab.physics.tissues import TISSUE_NAMES, TISSUES, Tissue, get_tissue, with_gadolinium

__all__ = [
    "GAMMA",
    "GAMMA_BAR",
    "TISSUES",
    "TISSUE_NAMES",
    "RFPulse",
    "Tissue",
    "Trajectory",
    "artifacts",
    "cardiac",
    "bloch",
    "bssfp_signal",
    "bssfp_steady_state",
    "coils",
    "constants",
    "ernst_angle",
    "flair_signal",
    "free_precession",
    "get_tissue",
    "gradient_echo",
    "inversion_recovery",
    "inversion_recovery_signal",
    "ir_null_time",
    "kspace",
    "larmor_frequency",
    "longitudinal_recovery",
    "noise",
    "rotate_rf",
    "signals",
    "simulate",
    "simulate_pulse",
    "sinc_pulse",
    "slice_thickness",
    "spin_echo",
    "spin_echo_signal",
    "spoiled_gre_signal",
    "tissues",
    "transverse_decay",
    "with_gadolinium",
]
