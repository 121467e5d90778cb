"""DynapSim model constants: the 24 per-neuron parameters, their defaults, and the state.

The order of `PARAMETER_NAMES` is part of the random-number contract: a parameter's index
is its Philox stream id, in the kernel (`kernels/dynapsim.cu`) and in `runner.physics.mismatch`.
"""

from __future__ import annotations

__all__ = [
    "CURRENT_NAMES",
    "LAYOUT_NAMES",
    "PARAMETER_NAMES",
    "PARAMETER_INDEX",
    "DEFAULT_LAYOUT",
    "DEFAULT_CURRENTS",
    "DEFAULT_ISCALE",
    "DEFAULT_DT",
    "RECORD_NAMES",
    "POSITIVE_PARAMETERS",
]

# The 13 bias currents of a core (the per-cluster lists of `dynapsim_net_from_spec`).
CURRENT_NAMES: tuple[str, ...] = (
    "Idc", "If_nmda", "Igain_ahp", "Igain_mem", "Igain_syn", "Ipulse_ahp", "Ipulse",
    "Iref", "Ispkthr", "Itau_ahp", "Itau_mem", "Itau_syn", "Iw_ahp",
)  # fmt: skip

# The 11 layout constants: 6 capacitances, the dark current and the transistor physics.
LAYOUT_NAMES: tuple[str, ...] = (
    "C_ahp", "C_syn", "C_pulse_ahp", "C_pulse", "C_ref", "C_mem",
    "Io", "kappa_n", "kappa_p", "Ut", "Vth",
)  # fmt: skip

PARAMETER_NAMES: tuple[str, ...] = CURRENT_NAMES + LAYOUT_NAMES
PARAMETER_INDEX: dict[str, int] = {name: i for i, name in enumerate(PARAMETER_NAMES)}

DEFAULT_LAYOUT: dict[str, float] = {
    "C_ahp": 40e-12,
    "C_syn": 24.5e-12,
    "C_pulse_ahp": 0.5e-12,
    "C_pulse": 0.5e-12,
    "C_ref": 1.5e-12,
    "C_mem": 3e-12,
    "Io": 5e-13,
    "kappa_n": 0.75,
    "kappa_p": 0.66,
    "Ut": 25e-3,
    "Vth": 7e-1,
}
DEFAULT_ISCALE = 1e-8
DEFAULT_DT = 1e-3

_KAPPA = (DEFAULT_LAYOUT["kappa_n"] + DEFAULT_LAYOUT["kappa_p"]) / 2


def _itau(capacitance: str, tau: float) -> float:
    """Leak current that gives time constant `tau`: (Ut/kappa) * C / tau."""
    return (DEFAULT_LAYOUT["Ut"] / _KAPPA) * DEFAULT_LAYOUT[capacitance] / tau


def _ipulse(capacitance: str, width: float) -> float:
    """Pulse current that gives pulse width `width`: Vth * C / width."""
    return DEFAULT_LAYOUT["Vth"] * DEFAULT_LAYOUT[capacitance] / width


DEFAULT_CURRENTS: dict[str, float] = {
    "Idc": DEFAULT_LAYOUT["Io"],
    "If_nmda": DEFAULT_LAYOUT["Io"],
    "Igain_ahp": 1 * _itau("C_ahp", 50e-3),
    "Igain_mem": 4 * _itau("C_mem", 20e-3),
    "Igain_syn": 100 * _itau("C_syn", 10e-3),
    "Ipulse_ahp": _ipulse("C_pulse_ahp", 1e-6),
    "Ipulse": _ipulse("C_pulse", 10e-6),
    "Iref": _ipulse("C_ref", 1e-3),
    "Ispkthr": 1e-7,
    "Itau_ahp": _itau("C_ahp", 50e-3),
    "Itau_mem": _itau("C_mem", 20e-3),
    "Itau_syn": _itau("C_syn", 10e-3),
    "Iw_ahp": 5e-13,
}

# Parameters that divide or set a scale: a value <= 0 is not a chip, it is a typo.
# (Idc, If_nmda and Iw_ahp may be zero: "no DC", "no adaptation".)
POSITIVE_PARAMETERS: frozenset[str] = frozenset(PARAMETER_NAMES) - {"Idc", "If_nmda", "Iw_ahp"}

# Recorded state traces, in the order the kernel writes them.
RECORD_NAMES: tuple[str, ...] = ("isyn", "iahp", "imem", "vmem")
