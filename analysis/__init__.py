"""Sales performance workbench.

The package is layered; each folder imports only the ones above it in this list:

* ``analysis.data``: the canonical model, config, loading CRM exports, data quality, periods,
  the deal timeline (which deals were open when) and the sample generator;
* ``analysis.semantic``: the metric catalog and the engine (``metrics``, ``compare``);
* ``analysis.analytics``: funnel, pipeline over time, losses;
* ``analysis.steering``: forecast and outlook, plan, scorecard, coaching, experiments, eNPS;
* ``analysis.reports``: formats, charts, review sections, rendering, the explorer;
* ``analysis.__main__``: the command line.

``import analysis`` gives the loader and the metric functions, and each module by its short
name (``analysis.funnel``, ``analysis.forecast``...; imported on first use).

>>> import analysis
>>> ds = analysis.load("data/sample")            # doctest: +SKIP
>>> ds.quality().ok                               # doctest: +SKIP
True
"""

import sys as _sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

# Altair imports jsonschema, which builds a Lark grammar for RFC 3987 IRIs at import time (about
# 2 s) whenever the optional ``rfc3987-syntax`` package is installed (Jupyter's dependencies
# install it). Nothing here validates IRIs, so unless it is already loaded, tell jsonschema it
# is absent: every review kernel starts 2 s sooner.
if "jsonschema" not in _sys.modules:
    _sys.modules.setdefault("rfc3987_syntax", None)

from analysis.data.config import Config, load_config
from analysis.data.loading import Dataset, load
from analysis.data.periods import Period, parse_period, period_of
from analysis.data.validation import QualityReport, validate
from analysis.errors import ConfigError, DataError, PeriodError, UnknownNameError, WorkbenchError
from analysis.semantic.catalog import Catalog, Metric, build_catalog
from analysis.semantic.engine import DIMENSIONS, compare, metrics, wilson_interval

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

#: Every module by its short name (``analysis.funnel``...), imported on first use: the steering and
#: report modules bring scipy, statsmodels and altair, which ``validate`` does not need.
MODULES = {
    **{m: f"analysis.data.{m}" for m in ("config", "loading", "locale", "mapping", "periods", "sample", "schema",
                                         "timeline", "validation", "values")},
    **{m: f"analysis.semantic.{m}" for m in ("catalog", "engine")},
    **{m: f"analysis.analytics.{m}" for m in ("funnel", "losses", "pipeline")},
    **{m: f"analysis.steering.{m}" for m in ("coaching", "enps", "experiments", "forecast", "outlook", "plan",
                                             "scorecard")},
    **{m: f"analysis.reports.{m}" for m in ("charts", "explore", "export", "figures", "plan_view", "render",
                                            "review", "steering_review")},
    "format": "analysis.format",
}


def __getattr__(name: str):
    if name in MODULES:
        import importlib

        module = importlib.import_module(MODULES[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
