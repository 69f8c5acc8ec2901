"""gaitforecast: scaling-law studies for self-supervised skeleton gait recognition."""

from gaitforecast.errors import GaitforecastError

__version__ = "0.1.0"
__all__ = ["GaitforecastError", "__version__"]
