"""dynapsim-runner: batch mismatch experiments on the DynapSim model of DYNAP-SE2."""

from .identity import FORMAT_VERSION
from .mismatch import MismatchModel
from .network import DynapSimNetwork, SimulationResult, dynapsim_net_from_spec
from .rockpool_bridge import from_rockpool, save_network_spec
from .spec import NetworkSpec

__all__ = [
    "FORMAT_VERSION",
    "dynapsim_net_from_spec",
    "from_rockpool",
    "save_network_spec",
    "DynapSimNetwork",
    "SimulationResult",
    "NetworkSpec",
    "MismatchModel",
]
