"""dynapsim-runner: batch mismatch experiments on the DynapSim model of DYNAP-SE2."""

from runner.network.dynapsim import DynapSimNetwork, SimulationResult, dynapsim_net_from_spec
from runner.network.rockpool import from_rockpool, save_network_spec
from runner.physics.hardware import (
    HARDWARE_PROFILES,
    HardwareProfile,
    check_hardware,
    hardware_refusal,
)
from runner.physics.mismatch import MismatchModel
from runner.physics.quantization import quantize_weights
from runner.physics.spec import NetworkSpec, Quantization
from runner.study.identity import FORMAT_VERSION

__all__ = [
    "FORMAT_VERSION",
    "dynapsim_net_from_spec",
    "from_rockpool",
    "save_network_spec",
    "DynapSimNetwork",
    "SimulationResult",
    "NetworkSpec",
    "MismatchModel",
    "Quantization",
    "quantize_weights",
    "check_hardware",
    "hardware_refusal",
    "HardwareProfile",
    "HARDWARE_PROFILES",
]
