"""Sales performance workbench.

``import analysis`` gives the loader, the data model, the config, periods and data-quality checks;
later layers (metrics, funnel, forecast, reports) build on these.

>>> import analysis
>>> ds = analysis.load("data/sample")            # doctest: +SKIP
>>> ds.quality().ok                               # doctest: +SKIP
True
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import funnel, losses, pipeline, schema
from .catalog import Catalog, Metric, build_catalog
from .config import Config, load_config
from .engine import DIMENSIONS, compare, metrics, wilson_interval
from .errors import ConfigError, DataError, PeriodError, UnknownNameError, WorkbenchError
from .loading import Dataset, load
from .periods import Period, parse_period, period_of
from .validation import QualityReport, validate

try:
    __version__ = _version("sales-workbench")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "Catalog",
    "DIMENSIONS",
    "Metric",
    "build_catalog",
    "compare",
    "metrics",
    "wilson_interval",
    "Config",
    "ConfigError",
    "DataError",
    "Dataset",
    "Period",
    "PeriodError",
    "QualityReport",
    "UnknownNameError",
    "WorkbenchError",
    "__version__",
    "load",
    "load_config",
    "parse_period",
    "period_of",
    "funnel",
    "losses",
    "pipeline",
    "schema",
    "validate",
]
