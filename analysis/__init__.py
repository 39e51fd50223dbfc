"""Sales performance workbench.

``import analysis`` gives the loader, the data model, the config, periods and data-quality checks,
the metric catalog and engine (``metrics``, ``compare``), the funnel, pipeline and loss analytics,
``forecast`` / ``outlook`` (weighted pipeline, time series with backtest, simulated outcome),
``plan`` (North Star), ``scorecard``, ``coaching``, ``experiments`` and ``enps``.

>>> import analysis
>>> ds = analysis.load("data/sample")            # doctest: +SKIP
>>> ds.quality().ok                               # doctest: +SKIP
True
"""

import sys as _sys
from importlib.metadata import PackageNotFoundError, version as _version

# Altair imports jsonschema, which builds a Lark grammar for RFC 3987 IRIs at import time (about
# 2 s) whenever the optional ``rfc3987-syntax`` package is installed (Jupyter's dependencies
# install it). Nothing here validates IRIs, so unless it is already loaded, tell jsonschema it
# is absent: every review kernel starts 2 s sooner.
if "jsonschema" not in _sys.modules:
    _sys.modules.setdefault("rfc3987_syntax", None)

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
    "coaching",
    "enps",
    "experiments",
    "forecast",
    "funnel",
    "losses",
    "outlook",
    "plan",
    "scorecard",
    "pipeline",
    "schema",
    "validate",
]

#: Steering modules, imported on first use (they bring scipy, statsmodels and altair, which a
#: command such as ``validate`` or the review launcher does not need).
_LAZY = ("coaching", "enps", "experiments", "forecast", "outlook", "plan", "scorecard")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
