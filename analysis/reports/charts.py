"""Presentation: one chart theme, offline SVG figures, KPI cards and formatted tables.

Everything a review notebook displays goes through this module, so that every report looks the
same and renders with the network cut:

* :data:`THEME` is the one Altair theme (fonts, sizes, grid, palettes). It is registered and
  enabled with :mod:`altair.theme` when this module is imported, and :func:`to_svg` always
  compiles charts under it, whatever theme a notebook enabled since.
* :data:`STATUS_COLORS` gives won / lost / open deals the same colours in every chart
  (use :func:`status_scale` in an encoding); :data:`PALETTE` is the categorical palette.
* :func:`show` turns a chart into a :class:`Figure`: in JupyterLab a live Vega-Lite chart
  (tooltips, zoom on line and point charts), a PNG for frontends without Vega, and for the
  HTML report a ``<figure>`` holding an inline SVG drawn by vl-convert (no JavaScript, no CDN,
  external data URLs refused), with the chart title as caption and as the SVG's accessible
  ``<title>``. :func:`axis` writes money, count and percent axes as the report's text does.
* :func:`kpi_cards` and :func:`table` render headline numbers and DataFrames as HTML, with
  formats applied here, at presentation time (metric frames keep numbers as numbers).

Every value that comes from data (names, labels, titles) is HTML-escaped.

>>> import altair as alt, pandas as pd
>>> from analysis import charts
>>> df = pd.DataFrame({"status": ["won", "lost", "open"], "deals": [12, 7, 9]})
>>> chart = alt.Chart(df, title="Open pipeline is thin: 9 deals").mark_bar().encode(
...     x="status:N", y="deals:Q", color=alt.Color("status:N", scale=charts.status_scale()))
>>> fig = charts.show(chart)                                     # doctest: +SKIP
>>> display(fig)                                                 # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import hashlib
import html
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from numbers import Integral, Real
from typing import Any, Literal

import altair as alt

from analysis.errors import WorkbenchError
from analysis.format import FORMATTER_KINDS, Numbers, VegaKind

__all__ = [
    "BAD_COLOR",
    "EMBED_OPTIONS",
    "FONT",
    "FORMAT_KINDS",
    "GOOD_COLOR",
    "KPI",
    "LAB_VEGALITE_VERSION",
    "NEUTRAL_COLOR",
    "PALETTE",
    "STATUS_COLORS",
    "THEME",
    "THEME_NAME",
    "VEGALITE_MIME",
    "ZOOM_MARKS",
    "Comparison",
    "Figure",
    "HTMLBlock",
    "PresentationError",
    "axis",
    "column_label",
    "fragment_css",
    "kpi_cards",
    "live_spec",
    "output_html",
    "show",
    "status_scale",
    "table",
    "to_svg",
]


class PresentationError(WorkbenchError, ValueError):
    """A chart, KPI card or table cannot be presented as asked (names the bad value)."""


# -- colours and fonts ------------------------------------------------------------------------

#: Deal outcome colours, the same in every chart and table (Okabe-Ito hues: distinguishable
#: with the common colour-vision deficiencies).
STATUS_COLORS: dict[str, str] = {
    "won": "#009E73",  # bluish green
    "lost": "#D55E00",  # vermillion
    "open": "#0072B2",  # blue
}

#: Categorical palette for everything that is not a deal outcome (reps, teams, products ...).
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#8C6D31",
    "#7F7F7F",
    "#B8A200",
    "#332288",
)

#: Text colours for a change that is good / bad / neither (contrast >= 4.5:1 on white).
GOOD_COLOR = "#007A57"
BAD_COLOR = "#B33F00"
NEUTRAL_COLOR = "#52606D"

#: One font stack for charts and HTML. Only locally installed fonts: nothing is downloaded.
FONT = "'Segoe UI', 'Helvetica Neue', Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"

_TEXT = "#1F2933"
_MUTED = "#52606D"
_GRID = "#E4E7EB"
_DOMAIN = "#9AA5B1"

THEME_NAME = "sales_workbench"

#: The Altair theme: the ``config`` block merged into every chart.
THEME: dict[str, Any] = {
    "config": {
        "font": FONT,
        "background": "white",
        "padding": 8,
        "view": {"stroke": None, "continuousWidth": 600, "continuousHeight": 300, "step": 28},
        "title": {
            "anchor": "start",
            "font": FONT,
            "fontSize": 16,
            "fontWeight": 600,
            "color": _TEXT,
            "subtitleFont": FONT,
            "subtitleFontSize": 13,
            "subtitleColor": _MUTED,
            "offset": 12,
        },
        "axis": {
            "labelFont": FONT,
            "titleFont": FONT,
            "labelFontSize": 12,
            "titleFontSize": 12,
            "titleFontWeight": 600,
            "labelColor": _MUTED,
            "titleColor": _MUTED,
            "gridColor": _GRID,
            "domainColor": _DOMAIN,
            "tickColor": _DOMAIN,
            "labelLimit": 220,
            "titlePadding": 8,
        },
        "axisX": {"grid": False},
        "axisBand": {"grid": False, "ticks": False},
        "legend": {
            "labelFont": FONT,
            "titleFont": FONT,
            "labelFontSize": 12,
            "titleFontSize": 12,
            "titleFontWeight": 600,
            "labelColor": _TEXT,
            "titleColor": _MUTED,
            "symbolType": "square",
            "labelLimit": 220,
        },
        "header": {
            "labelFont": FONT,
            "titleFont": FONT,
            "labelFontSize": 12,
            "titleFontSize": 13,
            "labelColor": _TEXT,
            "titleColor": _MUTED,
        },
        "text": {"font": FONT, "fontSize": 12, "color": _TEXT},
        "range": {"category": list(PALETTE)},
        "mark": {"color": PALETTE[0]},
        "bar": {"color": PALETTE[0], "cornerRadiusEnd": 2},
        "line": {"strokeWidth": 2.5},
        "point": {"filled": True, "size": 60},
        "rule": {"color": _DOMAIN},
    }
}


@alt.theme.register(THEME_NAME, enable=True)
def _workbench_theme() -> alt.theme.ThemeConfig:
    return THEME  # type: ignore[return-value]


def status_scale(statuses: Sequence[str] = ("won", "lost", "open")) -> alt.Scale:
    """Colour scale for a deal ``status`` field: won / lost / open in :data:`STATUS_COLORS`."""
    unknown = [s for s in statuses if s not in STATUS_COLORS]
    if unknown:
        raise PresentationError(
            f"unknown deal status {unknown[0]!r} for status_scale(); use some of {sorted(STATUS_COLORS)}"
        )
    return alt.Scale(domain=list(statuses), range=[STATUS_COLORS[s] for s in statuses])


# -- display objects --------------------------------------------------------------------------


class HTMLBlock:
    """A block of HTML that Jupyter displays (``text/html``) and nbconvert keeps as it is."""

    def __init__(self, html_text: str, text: str = ""):
        self.html = html_text
        self.text = text or "<html block>"
        self.rows: int | None = None  # data rows of a chart (see show)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self.html, "text/plain": self.text}

    def _repr_html_(self) -> str:
        return self.html

    def __html__(self) -> str:  # Jinja / MarkupSafe
        return self.html

    def __str__(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"HTMLBlock({self.text!r})"


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


#: Styles of the fragments below: sent with every fragment so that they also look right in
#: JupyterLab (the rendered report has the same rules in its own stylesheet).
_FRAGMENT_CSS = f"""
.wb-figure{{margin:1.25em 0;max-width:100%;break-inside:avoid;page-break-inside:avoid}}
.wb-figure svg{{display:block;max-width:100%;height:auto}}
.wb-figure figcaption{{margin:0 0 .4em;color:{_TEXT};font-family:{FONT}}}
.wb-figure .wb-fig-title{{display:block;font-size:1.05em;font-weight:600;line-height:1.35}}
.wb-figure .wb-fig-sub,.wb-figure .wb-fig-note{{display:block;font-size:.9em;color:{_MUTED}}}
.wb-kpis{{display:flex;flex-wrap:wrap;gap:12px;margin:1em 0;padding:0;list-style:none;font-family:{FONT}}}
.wb-kpi{{flex:1 1 180px;max-width:280px;border:1px solid {_GRID};border-radius:8px;padding:12px 14px;background:#fff;break-inside:avoid;page-break-inside:avoid}}
.wb-kpi-label{{font-size:.85em;color:{_MUTED};text-transform:uppercase;letter-spacing:.03em}}
.wb-kpi-value{{font-size:1.7em;font-weight:600;color:{_TEXT};line-height:1.25;font-variant-numeric:tabular-nums}}
.wb-kpi-cmp{{margin:.3em 0 0;padding:0;list-style:none;font-size:.88em}}
.wb-kpi-cmp > div{{margin:.1em 0}}
.wb-good{{color:{GOOD_COLOR}}} .wb-bad{{color:{BAD_COLOR}}} .wb-flat{{color:{NEUTRAL_COLOR}}}
.wb-arrow{{display:inline-block;min-width:1em;font-size:.85em}}
.wb-sr{{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}}
.wb-table-wrap{{overflow-x:auto;margin:1em 0;max-width:100%}}
table.wb-table{{border-collapse:collapse;font-family:{FONT};font-size:.9em;color:{_TEXT};break-inside:avoid;page-break-inside:avoid}}
table.wb-table caption{{caption-side:top;text-align:left;font-weight:600;padding:0 0 .4em}}
table.wb-table th,table.wb-table td{{padding:4px 10px;border-bottom:1px solid {_GRID};text-align:left;vertical-align:top}}
table.wb-table thead th{{border-bottom:2px solid {_DOMAIN};color:{_MUTED};font-weight:600}}
table.wb-table .num{{text-align:right;font-variant-numeric:tabular-nums}}
table.wb-table .na{{color:{_MUTED}}}
table.wb-table tbody tr:nth-child(even){{background:#F8FAFB}}
""".strip()

_STYLE_TAG = f"<style>{_FRAGMENT_CSS}</style>"


def fragment_css() -> str:
    """The CSS rules of figures, KPI cards and tables (the report stylesheet includes them)."""
    return _FRAGMENT_CSS


# -- charts -----------------------------------------------------------------------------------

_VL_VERSION = "_".join(alt.SCHEMA_VERSION.split(".")[:2])  # "v6.4.1" -> "v6_4" (vl-convert form)
_ids = itertools.count(1)


def _title_parts(title: Any) -> tuple[str, str]:
    """(title, subtitle) as plain text from a Vega-Lite ``title`` (str, list, dict)."""

    def text(value: Any) -> str:
        if value is None or value is alt.Undefined:
            return ""
        if isinstance(value, (list, tuple)):
            return " ".join(str(v) for v in value)
        return str(value)

    if isinstance(title, Mapping):
        return text(title.get("text")), text(title.get("subtitle"))
    return text(title), ""


def _spec(chart: Any) -> dict[str, Any]:
    if isinstance(chart, Mapping):
        spec = dict(chart)
        spec.setdefault("config", THEME["config"])
        return spec
    to_dict = getattr(chart, "to_dict", None)
    if to_dict is None:
        raise PresentationError(
            f"cannot draw a {type(chart).__name__}: pass an Altair chart (alt.Chart(...)) or a "
            "Vega-Lite dict"
        )
    from altair.utils.data import MaxRowsError

    try:
        with alt.theme.enable(THEME_NAME):
            return to_dict()
    except MaxRowsError:
        raise PresentationError(
            "chart data has more rows than Altair embeds (5,000): aggregate before charting "
            "(report charts carry their data inline)"
        ) from None


#: Most data rows a report chart may draw. Beyond a few hundred marks a chart is no use to a
#: reader (a 5,000-bar leaderboard), and vl-convert's engine overflows its stack on thousands:
#: sections show the ends of a long list or a distribution instead (see analysis.reports.review).
MAX_MARKS = 1_000


def chart_rows(spec: Mapping[str, Any]) -> int:
    """Data rows a Vega-Lite spec draws: its named datasets and inline ``values``, every layer."""
    rows = sum(len(v) for v in (spec.get("datasets") or {}).values() if isinstance(v, list))

    def inline(node: Any) -> int:
        if isinstance(node, Mapping):
            data = node.get("data")
            own = len(data["values"]) if isinstance(data, Mapping) and isinstance(data.get("values"), list) else 0
            return own + sum(inline(v) for k, v in node.items() if k in ("layer", "hconcat", "vconcat", "concat", "spec"))
        if isinstance(node, list):
            return sum(inline(v) for v in node)
        return 0

    return rows + inline(spec)


_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_ID_ATTR = re.compile(r'\bid="([^"]+)"')
_SVG_TAG = re.compile(r"<[^>]+>")  # text is escaped (no "<" in it): these are the markup


def _scope_ids(svg: str, prefix: str) -> str:
    """Prefix every id (and its references) so that several inline SVGs can share a page.

    Vega numbers clip paths and gradients from 1 in every SVG it draws (``clip1`` ...); two
    charts inline in one HTML page would otherwise point at each other's definitions.
    """
    ids = {i for tag in _SVG_TAG.findall(svg) for i in _ID_ATTR.findall(tag)}
    if not ids:
        return svg
    pattern = re.compile(
        r'(\bid="|url\(#|url\(&quot;#|href="#)(' + "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)) + r')(?=["\)&])'
    )
    # only inside tags: a label that reads 'id="clip1"' or 'url(#clip1)' is data and stays as written
    return _SVG_TAG.sub(lambda t: pattern.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", t.group(0)), svg)


def to_svg(chart: Any, *, alt_text: str | None = None, draw_title: bool = True) -> str:
    """Draw a chart as a standalone, accessible SVG string with vl-convert (offline).

    Parameters
    ----------
    chart : altair.TopLevelMixin or dict
        An Altair chart (or a Vega-Lite spec dict). Its data is embedded in the spec.
    alt_text : str, optional
        Accessible name of the picture; default: the chart title and subtitle.
    draw_title : bool, default True
        Draw the title inside the picture. :func:`show` sets it to False and puts the title
        in the figure caption instead (HTML text wraps; long "finding" titles do not get cut).

    Returns
    -------
    str
        ``<svg role="img" aria-labelledby=...><title>...</title>...</svg>`` with element ids
        made unique, ready to inline in HTML.

    Notes
    -----
    vl-convert runs Vega in an embedded engine: no browser, no network. External data URLs are
    refused (``allowed_base_urls=[]``); the ``$schema`` URL is never fetched; text is measured
    with locally installed fonts.
    """
    spec = _spec(chart)
    title, subtitle = _title_parts(spec.get("title"))
    if not draw_title:
        spec.pop("title", None)
    name = alt_text or ". ".join(p for p in (title, subtitle) if p)
    if not name:
        raise PresentationError(
            "chart has no title: state the finding, e.g. alt.Chart(df, title='Win rate fell 4 "
            "points in Q3'), or pass alt_text= so the picture has an accessible name"
        )
    rows = chart_rows(spec)
    if rows > MAX_MARKS:
        raise PresentationError(
            f"chart {title or name!r} would draw {rows:,} data rows, more than the {MAX_MARKS:,} a report chart may: "
            "show the first and last rows of the list or their distribution, and attach the full table"
        )
    try:
        svg = _drawn(spec)
    except ValueError as error:  # vl-convert reports spec and data errors as ValueError
        first = " ".join(str(error).split())[:300]
        raise PresentationError(f"vl-convert could not draw chart {title or name!r}: {first}") from None

    token = hashlib.sha1(svg.encode("utf-8")).hexdigest()[:6]
    prefix = f"wb{next(_ids)}-{token}"
    svg = _scope_ids(svg, prefix)
    match = _SVG_OPEN.search(svg)
    if match is None:  # pragma: no cover - vl-convert always returns one <svg> element
        raise PresentationError(f"vl-convert returned no <svg> for chart {name!r}")
    open_tag = match.group(0)
    new_open = open_tag.replace('class="marks"', 'class="marks wb-chart"')
    new_open = new_open[:-1] + f' role="img" aria-labelledby="{prefix}-title"' + ">"
    title_el = f'<title id="{prefix}-title">{esc(name)}</title>'
    return svg[: match.start()] + new_open + title_el + svg[match.end():]


#: Drawn charts (SVG and PNG) kept in the workbench's cache folder (see
#: analysis.data.loading.cache_folder); the oldest half goes when a folder holds more.
SVG_CACHE_FILES = 2_000

#: The PNG of a chart (the picture of a notebook opened where Vega does not run) is drawn at
#: this scale, and smaller when it would exceed PNG_MAX_PIXELS.
PNG_SCALE = 1.0
PNG_MAX_PIXELS = 3_000_000


def _drawn(spec: Mapping[str, Any], kind: Literal["svg", "png"] = "svg", *, scale: float = 1.0) -> Any:
    """vl-convert's SVG (text) or PNG (bytes) of ``spec``, kept on disk by the spec's hash (data
    included), the kind, the scale and the versions: a review drawn again from the same data (a
    scheduled rerun, the team reviews after the company one) reuses its charts instead of drawing
    them again (~0.08 s each)."""
    import json
    import os
    import tempfile

    import vl_convert as vlc

    from analysis.data.loading import cache_folder

    text = json.dumps(spec, sort_keys=True, default=str)
    tag = "" if kind == "svg" else f"png|{scale}|"  # SVG keys as before: caches stay valid
    key = hashlib.sha256(f"{tag}{vlc.__version__}|{_VL_VERSION}|{text}".encode()).hexdigest()[:40]
    folder = cache_folder()
    path = folder / kind / f"{key}.{kind}" if folder is not None else None
    if path is not None:
        try:
            return path.read_text(encoding="utf-8") if kind == "svg" else path.read_bytes()
        except (OSError, UnicodeDecodeError):
            pass
    if kind == "svg":
        out: Any = vlc.vegalite_to_svg(dict(spec), vl_version=_VL_VERSION, allowed_base_urls=[])
    else:
        out = vlc.vegalite_to_png(dict(spec), vl_version=_VL_VERSION, scale=scale, allowed_base_urls=[])
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "w" if kind == "svg" else "wb", **({"encoding": "utf-8"} if kind == "svg" else {})) as fh:
                fh.write(out)
            os.replace(tmp, path)
            if next(itertools.islice(path.parent.iterdir(), SVG_CACHE_FILES, None), None) is not None:
                old = sorted(path.parent.glob(f"*.{kind}"), key=lambda p: p.stat().st_mtime)
                for stale in old[: len(old) // 2]:
                    stale.unlink(missing_ok=True)
        except OSError:
            pass  # no cache: the next review draws it again
    return out


# -- axes -----------------------------------------------------------------------------------


def axis(numbers: Numbers | None = None, kind: VegaKind = "money", *, digits: int = 1, **props: Any) -> alt.Axis:
    """An Altair axis whose labels are written as the text of the report writes them.

    Parameters
    ----------
    numbers : analysis.format.Numbers, optional
        The dataset's formatter (``ds.config.numbers``); default en-US without a currency.
    kind : {"money", "count", "percent", "number"}
        ``"money"``: compact with the currency, as in sentences and cards (``"$25M"``,
        ``"Rp 22,5 M"``; never d3's ``"25G"`` or ``"35,000,000"``); ``"count"``: compact without
        a currency (``"12K"``, ``"1,5 jt"``), whole ticks only; ``"percent"``: a fraction as a
        percentage, up to ``digits`` decimals (``"12.5%"``); ``"number"``: up to ``digits``
        decimals with the locale's separators.
    **props
        Any other ``alt.Axis`` property (``title``, ``grid``, ``tickCount`` ...).

    The labels are a Vega ``labelExpr`` built by :meth:`Numbers.vega_expr`: the same in the
    report's SVG (vl-convert) and in JupyterLab's live chart, with no locale to configure.

    >>> y = alt.Y("amount:Q", axis=axis(ds.config.numbers, "money", title="Pipeline"))  # doctest: +SKIP
    """
    numbers = numbers if numbers is not None else Numbers()
    if kind == "count":
        props.setdefault("tickMinStep", 1)
    return alt.Axis(labelExpr=numbers.vega_expr(kind, digits=digits), **props)


# -- live charts: the Vega-Lite JupyterLab draws --------------------------------------------------

#: The Vega-Lite mime type JupyterLab 4's own renderer (``@jupyterlab/vega5-extension``, safe,
#: rank 57) draws: Vega-Lite 3 to 5, not the v6 Altair 6 writes.
VEGALITE_MIME = "application/vnd.vegalite.v5+json"

#: The Vega-Lite version bundled with that renderer (JupyterLab 4.6: vega-lite 5.6.1). A live spec
#: names it as its ``$schema`` (vega-embed warns when the spec's version is newer than its own);
#: the specs Altair 6 writes use nothing newer, which tests/test_charts_live.py checks by compiling
#: them with vl-convert's oldest Vega-Lite 5.
LAB_VEGALITE_VERSION = "5.6.1"

#: Marks whose chart zooms and pans (drag, wheel) along its continuous axes in a live session;
#: bars, boxes and labels keep their scales (a zoomed bar loses its baseline).
ZOOM_MARKS = frozenset({"line", "point", "circle", "square", "area", "trail"})

#: JupyterLab's chart menu: export the picture; no "open in the Vega editor" (it would send the
#: chart's data to vega.github.io) and no source views.
EMBED_OPTIONS: dict[str, Any] = {"actions": {"export": True, "source": False, "compiled": False, "editor": False}}

_WRAP = 90  # characters per line of a title drawn inside the chart


def _lines(text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(text, _WRAP) or [""]


def _unit_specs(node: Any, inherited: Mapping[str, Any]) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    """Every unit spec (one with a ``mark``) of a layered spec, with the encoding it sees."""
    if not isinstance(node, dict):
        return
    encoding = {**inherited, **(node.get("encoding") or {})}
    if "mark" in node:
        yield node, encoding
    for child in node.get("layer") or ():
        yield from _unit_specs(child, encoding)


def _interactive(spec: dict[str, Any]) -> dict[str, Any]:
    """What a live chart adds, decided here for every chart: tooltips on every mark (the fields
    of its encoding when the chart names none) and, for the first line / point / area layer with
    a continuous x axis, zoom and pan bound to its scales (x only when x is time or y is not
    continuous)."""
    config = spec.setdefault("config", {})
    config["mark"] = {"tooltip": True, **(config.get("mark") or {})}
    if any(k in spec for k in ("hconcat", "vconcat", "concat", "facet", "repeat")):
        return spec
    continuous = ("quantitative", "temporal")
    for unit, encoding in _unit_specs(spec, {}):
        mark = unit["mark"]["type"] if isinstance(unit["mark"], dict) else unit["mark"]
        x, y = encoding.get("x") or {}, encoding.get("y") or {}
        if mark not in ZOOM_MARKS or x.get("type") not in continuous or "params" in unit:
            continue
        both = x.get("type") == "quantitative" and y.get("type") in continuous
        unit["params"] = [{"name": "wb_zoom", "select": {"type": "interval", "encodings": ["x", "y"] if both else ["x"]},
                           "bind": "scales"}]
        for layer, _ in _unit_specs(spec, {}):  # zoomed marks stay inside the plot
            layer["mark"] = {**(layer["mark"] if isinstance(layer["mark"], dict) else {"type": layer["mark"]}),
                             "clip": True}
        break
    return spec


def _pictured(spec: Mapping[str, Any], caption: str | None) -> dict[str, Any]:
    """The spec with its title, subtitle and caption drawn inside (wrapped), for the pictures
    shown where the HTML caption is not: the live chart and the PNG."""
    out = dict(spec)
    title, subtitle = _title_parts(spec.get("title"))
    sub = [*(_lines(subtitle) if subtitle else []), *(_lines(caption) if caption else [])]
    if title or sub:
        base = dict(spec["title"]) if isinstance(spec.get("title"), Mapping) else {}
        base.update({"text": _lines(title) if title else "", **({"subtitle": sub} if sub else {})})
        out["title"] = base
    return out


def live_spec(chart: Any, *, caption: str | None = None) -> dict[str, Any]:
    """The Vega-Lite spec of ``chart`` for JupyterLab's renderer (:data:`VEGALITE_MIME`): the
    workbench theme, the data inline, title and caption drawn in, :func:`_interactive` added,
    ``$schema`` of :data:`LAB_VEGALITE_VERSION`."""
    import copy

    spec = _pictured(copy.deepcopy(_spec(chart)), caption)
    spec["$schema"] = f"https://vega.github.io/schema/vega-lite/v{LAB_VEGALITE_VERSION}.json"
    return _interactive(spec)


def _png(spec: Mapping[str, Any]) -> tuple[bytes, dict[str, int]]:
    """The PNG of a pictured spec and its CSS size (``{"width": .., "height": ..}``), drawn at
    :data:`PNG_SCALE` or smaller so that it has at most :data:`PNG_MAX_PIXELS` pixels."""
    import struct

    scale = PNG_SCALE
    png = _drawn(spec, "png", scale=scale)
    width, height = struct.unpack(">II", png[16:24])  # IHDR: width and height in pixels
    if width * height > PNG_MAX_PIXELS:  # a large chart: a smaller scale, drawn once more
        scale *= (PNG_MAX_PIXELS / (width * height)) ** 0.5 * 0.98
        png = _drawn(spec, "png", scale=scale)
        width, height = struct.unpack(">II", png[16:24])
    return png, {"width": round(width / scale), "height": round(height / scale)}


class Figure(HTMLBlock):
    """A chart to display: live in JupyterLab, a picture elsewhere, an HTML figure in reports.

    Its mime bundle holds

    * :data:`VEGALITE_MIME`: the live chart (tooltips, zoom where :func:`_interactive` says)
      that JupyterLab's Vega renderer draws. That renderer is ``safe`` (rank 57), so JupyterLab
      draws it in a trusted session and in an untrusted (reopened) notebook alike;
    * ``image/png``: the chart as a picture (vl-convert, title and caption drawn in), for
      frontends without Vega (GitHub, nbviewer, editors); with it present JupyterLab's Vega
      renderer does not draw and store a PNG of its own;
    * ``text/markdown``: the report's ``<figure>`` (caption, accessible inline SVG) on one line,
      an HTML block that nbconvert's markdown filter passes through unchanged. Not
      ``text/html``: JupyterLab ranks HTML (50) before Vega-Lite (57), so an HTML copy would hide
      the live chart, and untrusted it is sanitized into run-together text. nbconvert prefers
      ``text/html``, then ``text/markdown``, and has no Vega-Lite in its priorities, so the
      report shows this figure and loads nothing;
    * ``text/plain``: ``[chart] <title>``.

    ``html`` (and ``_repr_html_()``) is the figure HTML, as :class:`HTMLBlock`'s; ``spec`` the
    live spec; ``rows`` the data rows the chart draws.
    """

    def __init__(self, html_text: str, text: str, spec: dict[str, Any], png: bytes, size: Mapping[str, int]):
        super().__init__(html_text, text)
        self.spec = spec
        self.png = png
        self.size = dict(size)

    @property
    def markdown(self) -> str:
        """The figure HTML as a markdown HTML block: one line (a blank line would end it); a
        line break is white space in HTML, so the page shows the same figure."""
        return self.html.replace("\r", " ").replace("\n", " ")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:  # type: ignore[override]
        import base64

        data = {
            VEGALITE_MIME: self.spec,
            "image/png": base64.b64encode(self.png).decode("ascii"),
            "text/markdown": self.markdown,
            "text/plain": self.text,
        }
        metadata = {VEGALITE_MIME: {"embed_options": EMBED_OPTIONS}, "image/png": self.size}
        return data, metadata

    def _ipython_display_(self) -> None:
        """``display(figure)``: publish exactly :meth:`_repr_mimebundle_`. Without this, IPython
        would add the ``text/html`` of :meth:`_repr_html_` (kept for code that reads a block's
        HTML) to the output, and JupyterLab would show that instead of the live chart."""
        from IPython.display import publish_display_data

        data, metadata = self._repr_mimebundle_()
        publish_display_data(data, metadata)


def output_html(data: Mapping[str, Any]) -> str:
    """The report HTML of one notebook output's ``data``: its ``text/html``, or the figure a
    :class:`Figure` carries as ``text/markdown`` (for checks of executed notebooks)."""

    def text(value: Any) -> str:
        return "".join(value) if isinstance(value, list) else str(value or "")

    if "text/html" in data:
        return text(data["text/html"])
    if VEGALITE_MIME in data and "text/markdown" in data:
        return text(data["text/markdown"])
    return ""


def show(chart: Any, *, caption: str | None = None, alt_text: str | None = None) -> Figure:
    """A chart to display: live in JupyterLab, as a ``<figure>`` with an inline SVG in reports.

    Parameters
    ----------
    chart : altair chart or dict
        Give it a title that states the finding (``alt.Chart(df, title="...")``, or
        ``alt.Title("finding", subtitle="what is shown")``).
    caption : str, optional
        A note under the title: source, definition, period.
    alt_text : str, optional
        Accessible name; default: title and subtitle.

    Returns
    -------
    Figure
        ``display(show(chart))`` in a notebook: JupyterLab draws the live chart; the HTML report
        shows the figure (caption, inline SVG: no JavaScript, nothing loaded from the network).
        See :class:`Figure` for what its output holds.
    """
    spec = _spec(chart)
    title, subtitle = _title_parts(spec.get("title"))
    svg = to_svg(spec, alt_text=alt_text, draw_title=False)  # checks the title and MAX_MARKS first
    parts = []
    if title:
        parts.append(f'<span class="wb-fig-title">{esc(title)}</span>')
    if subtitle:
        parts.append(f'<span class="wb-fig-sub">{esc(subtitle)}</span>')
    if caption:
        parts.append(f'<span class="wb-fig-note">{esc(caption)}</span>')
    figcaption = f"<figcaption>{''.join(parts)}</figcaption>" if parts else ""
    body = f'{_STYLE_TAG}<figure class="wb-figure">{figcaption}{svg}</figure>'
    try:
        png, size = _png(_pictured(spec, caption))
    except ValueError as error:  # pragma: no cover - the SVG of the same spec was drawn above
        raise PresentationError(f"vl-convert could not picture chart {title or alt_text!r}: {error}") from None
    figure = Figure(body, f"[chart] {title or alt_text or ''}".strip(), live_spec(spec, caption=caption), png, size)
    figure.rows = chart_rows(spec)  # what the chart draws, for checks of the mark bound
    return figure


#: Inline styles of KPI cards and tables. The same rules as :func:`fragment_css`, on the elements
#: themselves: JupyterLab drops ``<style>`` from an untrusted notebook's HTML (its sanitizer keeps
#: ``style=""`` with known properties), and its own ``.jp-RenderedHTMLCommon`` rules (bullets
#: before list items, right-aligned table cells) outrank a class rule of a fragment. Cards are
#: ``<div>`` with list roles, not ``<ul>``: no list styling can put a bullet before them.
_INLINE = {
    "kpis": f"display:flex;flex-wrap:wrap;gap:12px;margin:1em 0;padding:0;font-family:{FONT}",
    "kpi": (f"flex:1 1 180px;max-width:280px;box-sizing:border-box;border:1px solid {_GRID};border-radius:8px;"
            "padding:12px 14px;margin:0;background:#fff;page-break-inside:avoid;text-align:left"),
    "label": f"font-size:.85em;color:{_MUTED};text-transform:uppercase;letter-spacing:.03em;line-height:1.4",
    "value": f"font-size:1.7em;font-weight:600;color:{_TEXT};line-height:1.25;margin:0",
    "cmps": "margin:.3em 0 0;padding:0;font-size:.88em;line-height:1.4",
    "cmp": "margin:.1em 0;padding:0",
    "arrow": "display:inline-block;min-width:1em;font-size:.85em",
    "sr": "position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap",
    "good": f"color:{GOOD_COLOR}",
    "bad": f"color:{BAD_COLOR}",
    "flat": f"color:{NEUTRAL_COLOR}",
    "th": f"padding:4px 10px;border-bottom:2px solid {_DOMAIN};color:{_MUTED};font-weight:600;vertical-align:bottom",
    "th_row": f"padding:4px 10px;border-bottom:1px solid {_GRID};font-weight:600;vertical-align:top;text-align:left",
    "td": f"padding:4px 10px;border-bottom:1px solid {_GRID};vertical-align:top",
    "na": f"color:{_MUTED}",
    "table": f"border-collapse:collapse;font-family:{FONT};font-size:.9em;color:{_TEXT};margin:0",
    "caption": "caption-side:top;text-align:left;font-weight:600;padding:0 0 .4em",
    "wrap": "overflow-x:auto;margin:1em 0;max-width:100%",
}


def _style(*names: str, align: str | None = None) -> str:
    rules = ";".join(_INLINE[n] for n in names)
    if align:
        rules += f";text-align:{align}"
    return f' style="{esc(rules)}"'


# -- KPI cards --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One comparison under a KPI: ``text`` such as "+12% vs 2025-Q2" and the signed ``change``
    (its sign sets the arrow; ``None`` or NaN draws no arrow)."""

    text: str
    change: float | None = None


@dataclass(frozen=True)
class KPI:
    """A headline number: ``value`` is display text (format it with the catalog first).

    ``direction`` says which way is good: ``"higher"`` (revenue, win rate) or ``"lower"``
    (cycle time, churn).
    """

    label: str
    value: Any
    comparisons: Sequence[Comparison] = field(default_factory=tuple)
    direction: Literal["higher", "lower"] = "higher"
    note: str | None = None


_KPI_KEYS = ("label", "value", "comparison", "change", "comparisons", "direction", "note")


def _as_comparison(value: Any) -> Comparison:
    if isinstance(value, Comparison):
        return value
    if isinstance(value, Mapping):
        return Comparison(str(value.get("text", "")), value.get("change"))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return Comparison(str(value[0]), value[1])
    if isinstance(value, str):
        return Comparison(value, None)
    raise PresentationError(
        f"bad KPI comparison {value!r}: use (text, change), {{'text': ..., 'change': ...}} or "
        "Comparison(text, change)"
    )


def _as_kpi(item: Any) -> KPI:
    if isinstance(item, KPI):
        kpi = item
    elif isinstance(item, Mapping):
        unknown = [k for k in item if k not in _KPI_KEYS]
        if unknown:
            hint = difflib.get_close_matches(str(unknown[0]), _KPI_KEYS, n=1)
            did = f"did you mean {hint[0]!r}? " if hint else ""
            raise PresentationError(
                f"unknown KPI card key {unknown[0]!r}: {did}valid keys are {', '.join(_KPI_KEYS)}"
            )
        if "label" not in item or "value" not in item:
            raise PresentationError(f"KPI card {dict(item)!r} needs at least 'label' and 'value'")
        comps = [_as_comparison(c) for c in item.get("comparisons", ())]
        if item.get("comparison") is not None:
            comps.insert(0, Comparison(str(item["comparison"]), item.get("change")))
        kpi = KPI(
            label=str(item["label"]),
            value=item["value"],
            comparisons=tuple(comps),
            direction=item.get("direction", "higher"),
            note=item.get("note"),
        )
    else:
        raise PresentationError(f"bad KPI card {item!r}: pass a dict with label and value, or a KPI")
    if kpi.direction not in ("higher", "lower"):
        raise PresentationError(
            f"KPI {kpi.label!r} has direction {kpi.direction!r}: use 'higher' or 'lower' (which way is good)"
        )
    return kpi


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    import numpy as np
    import pandas as pd

    try:
        result = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return isinstance(result, (bool, np.bool_)) and bool(result)


def _comparison_html(comp: Comparison, direction: str) -> str:
    change = comp.change
    if _is_missing(change):
        return f'<div class="wb-flat" role="listitem"{_style("cmp", "flat")}>{esc(comp.text)}</div>'
    try:
        change = float(change)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PresentationError(f"KPI comparison {comp.text!r} has a non-numeric change {change!r}") from None
    if change == 0:
        tone, arrow, verdict = "flat", "&#9644;", "unchanged"
    else:
        up = change > 0
        good = up == (direction == "higher")
        tone = "good" if good else "bad"
        arrow = "&#9650;" if up else "&#9660;"
        verdict = ("up" if up else "down") + (", better" if good else ", worse")
    return (
        f'<div class="wb-{tone}" role="listitem"{_style("cmp", tone)}>'
        f'<span class="wb-arrow" aria-hidden="true"{_style("arrow")}>{arrow}</span> '
        f'{esc(comp.text)}<span class="wb-sr"{_style("sr")}> ({verdict})</span></div>'
    )


def kpi_cards(items: Iterable[KPI | Mapping[str, Any]]) -> HTMLBlock:
    """Headline KPI cards: label, value and comparisons with coloured arrows.

    Parameters
    ----------
    items : iterable of KPI or dict
        Each dict has ``label``, ``value`` (display text) and optionally ``comparison`` (text)
        with ``change`` (signed number), or ``comparisons`` (a list of ``(text, change)``),
        ``direction`` (``"higher"`` or ``"lower"`` is better; default higher) and ``note``.

    Returns
    -------
    HTMLBlock

    Notes
    -----
    The arrow follows the sign of ``change`` (up / down, a bar when zero, nothing when the
    change is not available); the colour says whether that is good given ``direction``. The
    verdict is also written out for screen readers, so colour is never the only signal.

    >>> kpi_cards([{"label": "Revenue", "value": "$1.2M", "comparison": "+8% vs Q2", "change": 0.08},
    ...            {"label": "Sales cycle", "value": "41 d", "comparison": "+3 d vs Q2", "change": 3,
    ...             "direction": "lower"}])                          # doctest: +SKIP
    """
    cards = []
    for item in items:
        kpi = _as_kpi(item)
        comps = "".join(_comparison_html(_as_comparison(c), kpi.direction) for c in kpi.comparisons)
        note = f'<div class="wb-kpi-cmp wb-flat"{_style("cmps", "flat")}>{esc(kpi.note)}</div>' if kpi.note else ""
        value = "n/a" if _is_missing(kpi.value) else kpi.value
        cards.append(
            f'<div class="wb-kpi" role="listitem"{_style("kpi")}>'
            f'<div class="wb-kpi-label"{_style("label")}>{esc(kpi.label)}</div>'
            f'<div class="wb-kpi-value"{_style("value")}>{esc(value)}</div>'
            + (f'<div class="wb-kpi-cmp" role="list"{_style("cmps")}>{comps}</div>' if comps else "")
            + note
            + "</div>"
        )
    body = f'{_STYLE_TAG}<div class="wb-kpis" role="list"{_style("kpis")}>{"".join(cards)}</div>'
    return HTMLBlock(body, text=f"[{len(cards)} KPI cards]")


# -- tables -----------------------------------------------------------------------------------

Formatter = str | Callable[[Any], Any]

#: Format names a table column may be given instead of a format string: written by the
#: table's ``numbers`` (the dataset's formatter), so money carries the currency.
#: ``money``: the full figure ("$27,116,811", "Rp 27.116.811"); ``money_compact``: "$27.1M";
#: ``count``: a whole number ("1,234"); ``number``: one decimal; ``percent``: a fraction as
#: a percentage with one decimal ("12.3%").
FORMAT_KINDS = FORMATTER_KINDS


def _formatter(column: Any, fmt: Formatter, numbers: Numbers | None) -> Callable[[Any], str]:
    if callable(fmt):
        return lambda v: str(fmt(v))
    if not isinstance(fmt, str):
        raise PresentationError(
            f"format for column {column!r} is {fmt!r}: use a format string such as '{{:,.0f}}' "
            f"or ',.0f', a function, or one of {', '.join(FORMAT_KINDS)}"
        )
    if fmt in FORMAT_KINDS:
        if numbers is None:
            raise PresentationError(
                f"column {column!r} is formatted as {fmt!r}: pass numbers=ds.config.numbers to table() so the "
                "figures follow the dataset's currency and display locale"
            )
        return numbers.formatter(fmt)
    template = fmt if "{" in fmt else "{:" + fmt + "}"

    def apply(value: Any) -> str:
        try:
            return template.format(value)
        except (ValueError, TypeError, IndexError, KeyError) as error:
            raise PresentationError(
                f"format {fmt!r} of column {column!r} does not fit value {value!r} ({error}); "
                "fix the format or the column's type"
            ) from None

    return apply


def _default_text(value: Any, nums: Numbers | None = None) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Integral):
        return nums.number(value) if nums is not None else f"{value:,}"
    if isinstance(value, Real):
        if not math.isfinite(value):
            return "n/a"
        return nums.number(value, digits=2) if nums is not None else f"{value:,.2f}"
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


_IDENTIFIER = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def column_label(name: Any) -> str:
    """A header for a column name: an identifier becomes words (``"win_rate"`` -> ``"Win rate"``,
    ``"rep_id"`` -> ``"Rep"``); any other name (``"Days in step"``) is kept; a tuple (a
    MultiIndex column) is joined with " / "."""
    if isinstance(name, tuple):
        return " / ".join(column_label(v) for v in name if str(v) != "")
    text = str(name)
    if not _IDENTIFIER.fullmatch(text):
        return text
    words = text.removesuffix("_id").replace("_", " ") if text != "id" else "ID"
    return words[:1].upper() + words[1:]


def _is_number(value: Any) -> bool:
    return isinstance(value, (Real, Decimal)) and not isinstance(value, bool)


def table(
    df: Any,
    formats: Mapping[Any, Formatter] | None = None,
    caption: str | None = None,
    *,
    index: bool | None = None,
    labels: Mapping[Any, str] | None = None,
    numbers: Numbers | None = None,
    numeric: Sequence[Any] = (),
) -> HTMLBlock:
    """A DataFrame as an HTML table, formatted at presentation time.

    Parameters
    ----------
    df : pandas.DataFrame
        Numbers stay numbers in the frame; formatting happens here.
    formats : dict, optional
        Column -> format: a format string (``"{:,.0f}"``, ``"{:.1%}"`` as in the metric
        catalog), a bare format spec (``",.0f"``), a function returning text, or one of
        :data:`FORMAT_KINDS` (``"money"``, ``"percent"`` ...) written by ``numbers``.
        Unformatted numbers get thousands separators (floats two decimals).
    caption : str, optional
        Table caption (say what the table shows).
    index : bool, optional
        Show the index as row headers; default: only when it is not a plain 0..n-1 range.
    labels : dict, optional
        Column (or index level) -> header text, e.g. the metric catalog's labels
        (``{"win_rate": "Win rate (closed deals)"}``). Other identifiers are written as words
        by :func:`column_label` (``rep_id`` -> "Rep").
    numbers : analysis.format.Numbers, optional
        The dataset's formatter (``ds.config.numbers``): needed by the format names, and used
        for the separators of unformatted numbers.
    numeric : sequence, optional
        Columns of figures already written as text (a column mixing money and counts, row by
        row): right-aligned like number columns.

    Returns
    -------
    HTMLBlock

    Notes
    -----
    Missing values (None, NaN, NaT, NA: "not available", for instance a zero denominator)
    show as "n/a". Number columns (numeric dtype, or only numbers in them) are right-aligned,
    every other column left-aligned, header included; the alignment and the table's look are
    inline styles, so the table looks the same in the report, in JupyterLab and in an untrusted
    notebook. Every cell, header and the caption are HTML-escaped.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        if isinstance(df, pd.Series):
            df = df.to_frame()
        else:
            raise PresentationError(f"table() needs a pandas DataFrame, got {type(df).__name__}")
    formats = dict(formats or {})
    labels = dict(labels or {})
    names = [str(c) for c in df.columns]
    for what, given in (("format", formats), ("label", labels)):
        unknown = [c for c in given if c not in df.columns and (what == "format" or c not in df.index.names)]
        if unknown:
            hint = difflib.get_close_matches(str(unknown[0]), names, n=1)
            did = f"did you mean {hint[0]!r}? " if hint else ""
            raise PresentationError(
                f"{what} given for unknown column {unknown[0]!r}: {did}columns are {', '.join(names)}"
            )
    if index is None:
        index = not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
                     and all(n is None for n in df.index.names))

    figures = set(numeric)

    def is_numeric(column: Any) -> bool:
        if column in figures:
            return True
        s = df[column]
        if pd.api.types.is_bool_dtype(s):
            return False
        if pd.api.types.is_numeric_dtype(s):
            return True
        present = [v for v in s if not _is_missing(v)]
        return bool(present) and all(_is_number(v) for v in present)

    align = {c: "right" if is_numeric(c) else "left" for c in df.columns}
    fmts = {c: _formatter(c, f, numbers) for c, f in formats.items()}

    def header(name: Any) -> str:
        return labels.get(name, column_label(name)) if name is not None else ""

    head = []
    if index:
        head.append("".join(f'<th scope="col"{_style("th", align="left")}>{esc(header(n))}</th>'
                            for n in df.index.names))
    for c in df.columns:
        cls = ' class="num"' if align[c] == "right" else ""
        head.append(f'<th scope="col"{cls}{_style("th", align=align[c])}>{esc(header(c))}</th>')

    rows = []
    columns = list(df.columns)
    for idx, values in zip(df.index, df.itertuples(index=False, name=None)):
        cells = []
        if index:
            parts = idx if isinstance(idx, tuple) else (idx,)
            cells.extend(f'<th scope="row"{_style("th_row")}>{esc(_default_text(p, numbers))}</th>' for p in parts)
        for c, v in zip(columns, values):
            if _is_missing(v):
                cells.append(f'<td class="na" title="not available"{_style("td", "na", align=align[c])}>n/a</td>')
                continue
            text = fmts[c](v) if c in fmts else _default_text(v, numbers)
            cls = ' class="num"' if align[c] == "right" else ""
            cells.append(f"<td{cls}{_style('td', align=align[c])}>{esc(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")

    cap = f"<caption{_style('caption')}>{esc(caption)}</caption>" if caption else ""
    body = (
        f'{_STYLE_TAG}<div class="wb-table-wrap"{_style("wrap")}><table class="wb-table"{_style("table")}>{cap}'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    return HTMLBlock(body, text=f"[table {len(df)} x {len(df.columns)}] {caption or ''}".strip())
