"""reservoir: a Numba-compiled Izhikevich spiking-reservoir engine with local plasticity."""
__version__ = "0.1.0"

from .config import ConfigError, SimulationConfig, resolve_config  # noqa: E402
from .inputs import ExternalInput  # noqa: E402
from .network import Network, build_network  # noqa: E402
from .simulation import NumericalInstabilityError, Simulation  # noqa: E402

__all__ = ["ConfigError", "ExternalInput", "Network", "NumericalInstabilityError", "Simulation",
           "SimulationConfig", "build_network", "resolve_config", "__version__"]
