"""reservoir: a Numba-compiled Izhikevich spiking-reservoir engine with local plasticity."""
__version__ = "0.1.0"

from ._kernel_cache import configure as _configure_kernel_cache  # noqa: E402

_configure_kernel_cache()  # before any kernel is defined: a cache never outlives its source

from .config import ConfigError, SimulationConfig, resolve_config  # noqa: E402
from .inputs import ExternalInput  # noqa: E402
from .network import Network, build_network  # noqa: E402
from .simulation import NumericalInstabilityError, Simulation  # noqa: E402

__all__ = ["ConfigError", "ExternalInput", "Network", "NumericalInstabilityError", "Simulation",
           "SimulationConfig", "build_network", "resolve_config", "__version__"]
