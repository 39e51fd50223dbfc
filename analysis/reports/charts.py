"""Presentation: one chart theme, offline SVG figures, KPI cards and formatted tables.

Everything a review notebook displays goes through this module, so that every report looks the
same and renders with the network cut:

* :data:`THEME` is the one Altair theme (fonts, sizes, grid, palettes). It is registered and
  enabled with :mod:`altair.theme` when this module is imported, and :func:`to_svg` always
  compiles charts under it, whatever theme a notebook enabled since.
* :data:`STATUS_COLORS` gives won / lost / open deals the same colours in every chart
  (use :func:`status_scale` in an encoding); :data:`PALETTE` is the categorical palette.
* :func:`show` turns a chart into a ``<figure>`` holding an inline SVG drawn by vl-convert
  (no JavaScript, no CDN, external data URLs refused), with the chart title as caption and as
  the SVG's accessible ``<title>``. ``display(charts.show(chart))`` leaves a ``text/html``
  output that nbconvert keeps as it is.
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
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import altair as alt

from analysis.errors import WorkbenchError

__all__ = [
    "BAD_COLOR",
    "Comparison",
    "FONT",
    "GOOD_COLOR",
    "HTMLBlock",
    "KPI",
    "NEUTRAL_COLOR",
    "PALETTE",
    "PresentationError",
    "STATUS_COLORS",
    "THEME",
    "THEME_NAME",
    "fragment_css",
    "kpi_cards",
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
.wb-kpi-cmp li{{margin:.1em 0}}
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


#: Drawn charts kept in the workbench's cache folder (see analysis.data.loading.cache_folder).
SVG_CACHE_FILES = 2_000


def _drawn(spec: Mapping[str, Any]) -> str:
    """vl-convert's SVG of ``spec``, kept on disk by the spec's hash (data included) and the
    versions: a review drawn again from the same data (a scheduled rerun, the team reviews after
    the company one) reuses its charts instead of drawing them again (~0.08 s each)."""
    import json
    import os
    import tempfile

    import vl_convert as vlc

    from analysis.data.loading import cache_folder

    text = json.dumps(spec, sort_keys=True, default=str)
    key = hashlib.sha256(f"{vlc.__version__}|{_VL_VERSION}|{text}".encode()).hexdigest()[:40]
    folder = cache_folder()
    path = folder / "svg" / f"{key}.svg" if folder is not None else None
    if path is not None:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    svg = vlc.vegalite_to_svg(dict(spec), vl_version=_VL_VERSION, allowed_base_urls=[])
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(svg)
            os.replace(tmp, path)
            if next(itertools.islice(path.parent.iterdir(), SVG_CACHE_FILES, None), None) is not None:
                old = sorted(path.parent.glob("*.svg"), key=lambda p: p.stat().st_mtime)
                for stale in old[: len(old) // 2]:
                    stale.unlink(missing_ok=True)
        except OSError:
            pass  # no cache: the next review draws it again
    return svg


def show(chart: Any, *, caption: str | None = None, alt_text: str | None = None) -> HTMLBlock:
    """A chart as a ``<figure>``: caption (title, subtitle, note) and an inline SVG.

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
    HTMLBlock
        ``display(show(chart))`` in a notebook; no JavaScript, nothing loaded from the network.
    """
    spec = _spec(chart)
    title, subtitle = _title_parts(spec.get("title"))
    svg = to_svg(spec, alt_text=alt_text, draw_title=False)
    parts = []
    if title:
        parts.append(f'<span class="wb-fig-title">{esc(title)}</span>')
    if subtitle:
        parts.append(f'<span class="wb-fig-sub">{esc(subtitle)}</span>')
    if caption:
        parts.append(f'<span class="wb-fig-note">{esc(caption)}</span>')
    figcaption = f"<figcaption>{''.join(parts)}</figcaption>" if parts else ""
    body = f'{_STYLE_TAG}<figure class="wb-figure">{figcaption}{svg}</figure>'
    block = HTMLBlock(body, text=f"[chart] {title or alt_text or ''}".strip())
    block.rows = chart_rows(spec)  # what the chart draws, for checks of the mark bound
    return block


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
        return f'<li class="wb-flat">{esc(comp.text)}</li>'
    try:
        change = float(change)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PresentationError(f"KPI comparison {comp.text!r} has a non-numeric change {change!r}") from None
    if change == 0:
        cls, arrow, verdict = "wb-flat", "&#9644;", "unchanged"
    else:
        up = change > 0
        good = up == (direction == "higher")
        cls = "wb-good" if good else "wb-bad"
        arrow = "&#9650;" if up else "&#9660;"
        verdict = ("up" if up else "down") + (", better" if good else ", worse")
    return (
        f'<li class="{cls}"><span class="wb-arrow" aria-hidden="true">{arrow}</span> '
        f'{esc(comp.text)}<span class="wb-sr"> ({verdict})</span></li>'
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
        note = f'<div class="wb-kpi-cmp wb-flat">{esc(kpi.note)}</div>' if kpi.note else ""
        value = "n/a" if _is_missing(kpi.value) else kpi.value
        cards.append(
            '<li class="wb-kpi">'
            f'<div class="wb-kpi-label">{esc(kpi.label)}</div>'
            f'<div class="wb-kpi-value">{esc(value)}</div>'
            + (f'<ul class="wb-kpi-cmp">{comps}</ul>' if comps else "")
            + note
            + "</li>"
        )
    body = f'{_STYLE_TAG}<ul class="wb-kpis">{"".join(cards)}</ul>'
    return HTMLBlock(body, text=f"[{len(cards)} KPI cards]")


# -- tables -----------------------------------------------------------------------------------

Formatter = str | Callable[[Any], Any]


def _formatter(column: Any, fmt: Formatter) -> Callable[[Any], str]:
    if callable(fmt):
        return lambda v: str(fmt(v))
    if not isinstance(fmt, str):
        raise PresentationError(
            f"format for column {column!r} is {fmt!r}: use a format string such as '{{:,.0f}}' "
            "or ',.0f', or a function"
        )
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


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if isinstance(value, numbers.Real):
        return f"{value:,.2f}" if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _label(value: Any) -> str:
    if isinstance(value, tuple):
        return " / ".join(str(v) for v in value if str(v) != "")
    return str(value)


def table(
    df: Any,
    formats: Mapping[Any, Formatter] | None = None,
    caption: str | None = None,
    *,
    index: bool | None = None,
) -> HTMLBlock:
    """A DataFrame as an HTML table, formatted at presentation time.

    Parameters
    ----------
    df : pandas.DataFrame
        Numbers stay numbers in the frame; formatting happens here.
    formats : dict, optional
        Column -> format: a format string (``"{:,.0f}"``, ``"{:.1%}"`` as in the metric
        catalog), a bare format spec (``",.0f"``), or a function returning text.
        Unformatted numbers get thousands separators (floats two decimals).
    caption : str, optional
        Table caption (say what the table shows).
    index : bool, optional
        Show the index as row headers; default: only when it is not a plain 0..n-1 range.

    Returns
    -------
    HTMLBlock

    Notes
    -----
    Missing values (None, NaN, NaT, NA: "not available", for instance a zero denominator)
    show as "n/a". Every cell, header and the caption are HTML-escaped.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        if isinstance(df, pd.Series):
            df = df.to_frame()
        else:
            raise PresentationError(f"table() needs a pandas DataFrame, got {type(df).__name__}")
    formats = dict(formats or {})
    unknown = [c for c in formats if c not in df.columns]
    if unknown:
        names = [str(c) for c in df.columns]
        hint = difflib.get_close_matches(str(unknown[0]), names, n=1)
        did = f"did you mean {hint[0]!r}? " if hint else ""
        raise PresentationError(
            f"format given for unknown column {unknown[0]!r}: {did}columns are {', '.join(names)}"
        )
    if index is None:
        index = not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
                     and all(n is None for n in df.index.names))

    numeric = {c: pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in df.columns}
    fmts = {c: _formatter(c, f) for c, f in formats.items()}

    head = []
    if index:
        names = [n for n in df.index.names]
        head.append("".join(f'<th scope="col">{esc("" if n is None else n)}</th>' for n in names))
    for c in df.columns:
        cls = ' class="num"' if numeric[c] else ""
        head.append(f'<th scope="col"{cls}>{esc(_label(c))}</th>')

    rows = []
    columns = list(df.columns)
    for idx, values in zip(df.index, df.itertuples(index=False, name=None)):
        cells = []
        if index:
            parts = idx if isinstance(idx, tuple) else (idx,)
            cells.extend(f'<th scope="row">{esc(_default_text(p))}</th>' for p in parts)
        for c, v in zip(columns, values):
            if _is_missing(v):
                cells.append('<td class="na" title="not available">n/a</td>')
                continue
            text = fmts[c](v) if c in fmts else _default_text(v)
            cls = ' class="num"' if numeric[c] else ""
            cells.append(f"<td{cls}>{esc(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")

    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    body = (
        f'{_STYLE_TAG}<div class="wb-table-wrap"><table class="wb-table">{cap}'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    return HTMLBlock(body, text=f"[table {len(df)} x {len(df.columns)}] {caption or ''}".strip())
