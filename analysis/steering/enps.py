"""Employee net promoter score from the pulse survey (SPEC sections 2 and 4).

``enps(ds, period="2026-Q3")`` returns per period and team (and for the whole company) the
answers, promoters (9-10), passives (7-8), detractors (0-6), their shares and
``enps = 100 x (promoters - detractors) / answers``, with a 95 % interval.

The counts come from the metric engine (catalog metrics ``pulse_responses``, ``promoters``,
``passives``, ``detractors`` and ``enps``), so the figures here are the catalog's figures: an
answer belongs to the period of its ``answered_at`` (company time zone) and to its rep's team,
or, for an anonymous answer (no ``rep_id``), to the ``team`` written on it.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from analysis.data.loading import Dataset
from analysis.data.periods import Period
from analysis.semantic.engine import Z95, metrics

COMPANY = "Company"

COLUMNS = [
    "period", "level", "responses", "promoters", "passives", "detractors",
    "promoter_share", "passive_share", "detractor_share", "enps", "enps_low", "enps_high",
]  # fmt: skip


def enps(
    ds: Dataset,
    *,
    period: str | Period | Iterable[str | Period] | None = None,
    grain: str = "quarter",
    by: str | None = "team",
) -> pd.DataFrame:
    """eNPS per period and group, plus a company row per period.

    Parameters
    ----------
    ds
        A dataset with a ``pulse`` table (``answered_at``, ``score``; ``rep_id``, ``team``).
    period
        One period label or several (their grain wins over ``grain``); default every period
        with data.
    grain
        Period grain when ``period`` is not given (default quarter).
    by
        A dimension (default ``team``) or None for the company only.

    Returns
    -------
    pandas.DataFrame
        ``by`` (``"Company"`` on the company rows), ``period``, ``level`` (``company`` or the
        dimension name), ``responses``, ``promoters``, ``passives``, ``detractors``,
        ``promoter_share``, ``passive_share``, ``detractor_share``, ``enps`` (-100 to 100),
        ``enps_low``, ``enps_high``. Company rows first in each period. Without a pulse table
        the frame is empty and ``attrs["unavailable"]`` says why.

    Notes
    -----
    enps = 100 x (promoters - detractors) / responses; NA when there are no responses.
    The interval is the Wald interval of a difference of two shares of one multinomial sample:
    se = 100 x sqrt((s_P + s_D - (s_P - s_D)²) / n), enps ± 1.96 se, clipped to [-100, 100];
    NA below 2 answers. Answers with a score outside 0-10 are not expected (the data-quality
    report lists them); they count as responses but in no group.
    """
    ids = ["pulse_responses", "promoters", "passives", "detractors", "enps"]
    periods: Any = None
    if period is not None:
        periods = [period] if isinstance(period, (str, Period, int)) else list(period)
        first = periods[0]
        if isinstance(first, Period):
            grain = first.grain
        else:
            from analysis.data.periods import parse_period

            grain = parse_period(first, fiscal_start_month=ds.config.fiscal_year_start_month).grain
    elif ds.has("pulse"):
        # every period from the first answer to the last (not the deals' span)
        from analysis.data.periods import grain_of, periods_between

        t = ds.table("pulse")
        lo, hi = (v.to_pyarrow().as_py() for v in (t.answered_at.min(), t.answered_at.max()))
        if lo is not None:
            periods = periods_between(lo, hi, grain_of(grain), fiscal_start_month=ds.config.fiscal_year_start_month)
    dims = [by] if by else []
    frames = []
    company = metrics(ds, ids, grain=grain, periods=periods)
    gone = company.attrs.get("unavailable", {})
    if by:
        company.insert(0, by, COMPANY)
    company["level"] = "company"
    frames.append(company)
    if by and not gone:
        groups = metrics(ds, ids, by=dims, grain=grain, periods=periods)
        groups["level"] = by
        frames.append(groups)
    out = pd.concat(frames, ignore_index=True)
    if periods is None and not gone:  # every period with answers, not every period with deals
        answered = set(company.loc[pd.to_numeric(company["pulse_responses"], errors="coerce").fillna(0) > 0, "period"])
        out = out[out["period"].isin(answered)]
    if gone:
        out = out.iloc[0:0]
    out = out.rename(columns={"pulse_responses": "responses"})
    for c in ("responses", "promoters", "passives", "detractors"):
        out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0).astype("int64")
    n = out["responses"].astype("float64").where(out["responses"] > 0)
    for c, s in (("promoters", "promoter_share"), ("passives", "passive_share"), ("detractors", "detractor_share")):
        out[s] = (out[c] / n).astype("Float64")
    out["enps"] = pd.to_numeric(out["enps"], errors="coerce").astype("Float64")
    sp = out["promoter_share"].astype("float64")
    sd = out["detractor_share"].astype("float64")
    with np.errstate(invalid="ignore"):
        se = 100 * np.sqrt(((sp + sd - (sp - sd) ** 2) / n).clip(lower=0))
    se = se.where(out["responses"] >= 2)
    out["enps_low"] = (out["enps"].astype("float64") - Z95 * se).clip(lower=-100).astype("Float64")
    out["enps_high"] = (out["enps"].astype("float64") + Z95 * se).clip(upper=100).astype("Float64")
    order = {"company": 0, by: 1} if by else {"company": 0}
    out = out.assign(_o=out["level"].map(order))
    sort = ["period", "_o", *dims]
    out = out.sort_values(sort, kind="stable").drop(columns="_o")
    out = out[[*dims, *COLUMNS]].reset_index(drop=True)
    out.attrs["unavailable"] = dict(gone)
    out.attrs["grain"] = grain
    return out


def enps_sentence(frame: pd.DataFrame, period: str | None = None) -> str:
    """One sentence for the review: the company eNPS of a period (default the last), its
    change from the period before and the lowest group.

    >>> enps_sentence(enps(ds, period=["2026-Q2", "2026-Q3"]))  # doctest: +SKIP
    'eNPS in 2026-Q3 was -8 (15 promoters, 48 passives, 22 detractors of 85 answers), down from +3 in 2026-Q2; lowest team: West Mid-Market (-38, 16 answers).'
    """
    if frame.empty:
        why = "; ".join(frame.attrs.get("unavailable", {}).values())
        return f"eNPS is not available{': ' + why if why else ''}."
    comp = frame[frame["level"] == "company"]
    periods = list(dict.fromkeys(comp["period"]))
    p = period or periods[-1]
    row = comp[comp["period"] == p]
    if row.empty or row["responses"].iloc[0] == 0:
        return f"No pulse answers in {p}: eNPS is not available."
    r = row.iloc[0]
    text = (f"eNPS in {p} was {_score(r['enps'])} ({r['promoters']} promoters, {r['passives']} passives, "
            f"{r['detractors']} detractors of {r['responses']} answers)")
    i = periods.index(p)
    if i > 0:
        prev = comp[comp["period"] == periods[i - 1]].iloc[0]
        if prev["responses"] > 0 and not pd.isna(prev["enps"]):
            d = float(r["enps"]) - float(prev["enps"])
            word = "up" if d > 0 else "down" if d < 0 else "unchanged"
            text += f", {word} from {_score(prev['enps'])} in {periods[i - 1]}" if word != "unchanged" else f", unchanged from {periods[i - 1]}"
    groups = frame[(frame["level"] != "company") & (frame["period"] == p) & (frame["responses"] >= 5)]
    if len(groups) > 1:
        dim = groups["level"].iloc[0]
        low = groups.sort_values(["enps", "responses"], ascending=[True, False]).iloc[0]
        text += f"; lowest {dim}: {low[dim]} ({_score(low['enps'])}, {low['responses']} answers)"
    return text + "."


def _score(x: Any) -> str:
    if x is None or pd.isna(x):
        return "n/a"
    v = float(x)
    return f"{v:+.0f}" if round(v) != 0 else "0"
