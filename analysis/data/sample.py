"""Synthetic sample dataset: a realistic, deterministic sales organisation (SPEC sections 2 and 10).

``sample_tables()`` builds every table of the data model in memory; ``write_sample()`` writes them
as CSV and/or Parquet plus a ``workbench.yml`` that maps the CRM stage names to the canonical
funnel steps. The same arguments always give the same data (and byte-identical files).

How the company is built
------------------------
* Reps are organised in teams of about eight (one ``manager``, SDRs, AEs and one AM) that cover a
  region and focus on a segment (``East SMB``, ``West Mid-Market``, ``West Enterprise``...). Each
  rep has a latent skill (win rates, SDR conversion, response time), a volume factor (activities
  per day) and a quality factor (call outcomes, reply rates), so rep differences are visible.
  Some reps are hired during the window (with a ramp-up) and some leave (``end_date``). The first
  AE of the first team always leaves mid-window; a replacement is hired two weeks before.
* A rep who leaves keeps what was closed before the end date; deals and leads still open then are
  **reassigned** to a successor (a same-role teammate without an end date hired by then, else the
  team manager): ``owner_id`` is the successor and every activity after the end date is theirs.
* SDRs receive leads (inbound, outbound, referral, event, partner); some are never responded to.
  Converted leads become deals owned by an AE active at that moment; AEs also source their own
  deals. Deals move through the CRM stages with one visibly bigger leak (Demo -> Negotiation),
  occasional skips, backward moves, parking in Nurture and re-opened lost deals. Cycle length
  depends on the segment (SMB weeks, Enterprise months). Closes cluster at quarter ends (deals
  pulled in with a discount), and Q4 is stronger.
* Won deals become subscriptions (starting the first day of the next month); AMs work renewal
  deals before a subscription ends (won renewals create a renewed contract with ``renewed_from``,
  lost ones are churn) and expansion deals on won accounts.
* Activities are linked to deals (by stage, with more engagement on deals that end up won), to
  leads (the first touch is the lead's first response), or to no record (prospecting), up to a
  role-typical daily volume. Quotas are set per rep and calendar quarter (revenue and deals_won
  for AEs and AMs, calls and meetings for SDRs) and per team (revenue).

The simulation starts six months before the window so that the window opens with a realistic
open pipeline: from that burn-in only the deals still open at the window start are kept (with
their earlier stage history); leads, activities and closed deals before the window are dropped.

Generation is done team by team: every team has its own random stream derived from the seed
(``numpy.random.SeedSequence(seed, spawn_key=(2, team))``), so the in-memory path and the chunked
writer produce identical data and memory stays bounded for 5,000 reps.
"""

from __future__ import annotations

import calendar as _calendar
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analysis.data.config import Scorecard
from analysis.data.schema import LOSS_REASONS, STEPS, TABLES

__all__ = [
    "SAMPLE_TABLES",
    "SAMPLE_ARGS",
    "MIXED_PARQUET_TABLES",
    "default_end",
    "sample_config",
    "sample_tables",
    "write_sample",
]

#: Tables the generator builds (every table of SPEC section 2 except fx_rates: one currency).
SAMPLE_TABLES = (
    "reps",
    "accounts",
    "leads",
    "opportunities",
    "stage_history",
    "activities",
    "quotas",
    "subscriptions",
    "spend",
    "pulse",
)

#: Arguments of the committed ``data/sample`` folder (see data/sample/README.md).
SAMPLE_ARGS = {"reps": 40, "months": 24, "seed": 7, "end": date(2026, 9, 30), "format": "mixed"}

#: Tables written as Parquet by ``format="mixed"`` (the rest as CSV): the two big ones.
MIXED_PARQUET_TABLES = ("activities", "stage_history")

#: Teams generated (and written) together; a constant so the files do not depend on memory.
CHUNK_TEAMS = 32

TIMEZONE = "America/New_York"
CURRENCY = "USD"
TS_UNIT = "us"  # pandas' default resolution when parsing ISO strings

# -- vocabularies (every allowed value is taken from analysis.schema) --------------------------


def _allowed(table: str, column: str) -> tuple[str, ...]:
    allowed = TABLES[table].column(column).allowed
    assert allowed is not None, f"{table}.{column} has no allowed values"
    return allowed


ROLES = _allowed("reps", "role")
SDR, AE, AM, MGR = (ROLES.index(r) for r in ("SDR", "AE", "AM", "manager"))

LEAD_STATUSES = _allowed("leads", "status")
LS_OPEN, LS_QUAL, LS_DISQ, LS_CONV = (LEAD_STATUSES.index(s) for s in ("open", "qualified", "disqualified", "converted"))

DEAL_STATUSES = _allowed("opportunities", "status")
ST_OPEN, ST_WON, ST_LOST = (DEAL_STATUSES.index(s) for s in ("open", "won", "lost"))

DEAL_TYPES = _allowed("opportunities", "deal_type")
NB, EXP, REN = (DEAL_TYPES.index(s) for s in ("new_business", "expansion", "renewal"))
_DT = np.array([NB, EXP, REN])  # row order of the per-type parameter tables below
_DT_ROW = np.argsort(_DT)  # deal_type code -> parameter row

ACT_TYPES = _allowed("activities", "type")
A_CALL, A_EMAIL, A_MEETING, A_DEMO, A_MESSAGE = (ACT_TYPES.index(s) for s in ("call", "email", "meeting", "demo", "message"))
DIRECTIONS = _allowed("activities", "direction")
D_OUT, D_IN = DIRECTIONS.index("outbound"), DIRECTIONS.index("inbound")
OUTCOMES = _allowed("activities", "outcome")
(O_CONN, O_NOANS, O_VM, O_POS, O_NEG, O_BOOKED, O_REPLIED, O_DONE, O_NOSHOW) = (
    OUTCOMES.index(s)
    for s in (
        "connected",
        "no_answer",
        "voicemail",
        "positive",
        "negative",
        "meeting_booked",
        "replied",
        "completed",
        "no_show",
    )
)
SPEND_CATEGORIES = _allowed("spend", "category")
SP_SALES, SP_MKT = SPEND_CATEGORIES.index("sales"), SPEND_CATEGORIES.index("marketing")
LOSS = LOSS_REASONS

# CRM stages: the first seven map one-to-one to the canonical steps (schema.STEPS order).
STAGE_NAMES = (
    "Prospecting",
    "Qualification",
    "Research",
    "Demo",
    "Negotiation",
    "Contract Sent",
    "Nurture",
    "Closed Won",
    "Closed Lost",
)
STAGE_PROBABILITY = (0.05, 0.10, 0.20, 0.30, 0.55, 0.75, 0.05)
PRO, QUA, RES, DEM, NEG, CON, NUR, WON, LOST = range(9)
assert len(STEPS) == 7

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
SMB, MID, ENT = range(3)
INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Logistics",
    "Media",
)
INDUSTRY_P = np.array([0.22, 0.14, 0.14, 0.14, 0.12, 0.08, 0.09, 0.07])
REGIONS = ("East", "West", "Central")
TEAM_FOCUS = (SMB, MID, SMB, MID, ENT)
#: Segment mix of a team's accounts by its focus.
FOCUS_MIX = np.array([[0.80, 0.18, 0.02], [0.22, 0.63, 0.15], [0.03, 0.32, 0.65]])
PRODUCTS = ("Platform", "Analytics", "Automation", "Premium Support")
PRODUCT_P = np.array([0.55, 0.20, 0.15, 0.10])
PRODUCT_FACTOR = np.array([1.0, 0.6, 0.75, 0.35])
LEAD_SOURCES = ("inbound", "outbound", "referral", "event", "partner", "customer")
SRC_IN, SRC_OUT, SRC_REF, SRC_EVT, SRC_PART, SRC_CUST = range(6)

FIRST_NAMES = (
    "Aisha Alex Amara Andre Ana Ben Bianca Caleb Camila Carlos Chloe Daniel Dana Diego Elena Eli "
    "Emma Ethan Fatima Felix Grace Hannah Hugo Isaac Ivy Jack Jada James Jasmine Jonah Julia Kai "
    "Kara Leo Lena Liam Lucia Maya Marcus Mei Nadia Naomi Nate Nina Noah Olivia Omar Owen Priya "
    "Quinn Rafael Rosa Ryan Sam Sara Sofia Tariq Tess Theo Uma Victor Vera Wes Xavier Yara Yusuf "
    "Zoe Zane Ruth Ivan Mila Paul"
).split()
LAST_NAMES = (
    "Adams Alvarez Baker Bennett Brooks Campbell Carter Chen Clark Collins Cruz Davis Diaz Edwards "
    "Evans Fischer Flores Foster Garcia Gomez Gray Green Hall Harris Hayes Hughes Ito Jackson James "
    "Jensen Johnson Kelly Kim Klein Lee Lewis Lopez Martin Mehta Miller Mitchell Moore Morgan Murphy "
    "Nguyen Novak Okafor Ortiz Patel Perez Price Reed Reyes Rivera Roberts Rossi Russell Sanchez "
    "Schmidt Scott Shah Silva Singh Smith Sullivan Taylor Torres Turner Walker Wang Ward Young"
).split()
COMPANY_A = (
    "Blue Bright Cedar Clear Copper Crest Delta Eagle Ember Evergreen First Golden Granite Harbor "
    "High Iron Keystone Lake Liberty Maple Meridian North Oak Pacific Peak Pine Pioneer Prime "
    "Quantum Red Ridge River Silver Stone Summit True Union Vector Vista West"
).split()
COMPANY_B = (
    "Analytics Bay Bridge Capital Cloud Data Design Dynamics Energy Foods Freight Health Labs "
    "Learning Logic Media Metrics Motion Networks Point Retail Robotics Signal Software Solutions "
    "Source Stack Systems Tech Textiles Tools Trade Transit Ventures Vision Wave Works Yards Grid Path"
).split()
COMPANY_C = ("Inc", "LLC", "Group", "Corp", "Co", "Partners", "Holdings", "Industries")

# -- working-time model ---------------------------------------------------------------------------
#
# Event times are integers "T": working seconds since the first working day of the window, with a
# working day from 08:00 to 18:00 local time (DAY_S seconds). T // DAY_S indexes the calendar's
# working days, so every generated timestamp falls on a working day within working hours.

WORK_START_H = 8
DAY_S = 10 * 3600


def _us_holidays(year: int) -> list[date]:
    """US federal-style company holidays of ``year`` (observed dates)."""

    def nth(weekday: int, n: int, month: int) -> date:
        if n > 0:
            d = date(year, month, 1)
            return d + timedelta(days=(weekday - d.weekday()) % 7 + 7 * (n - 1))
        d = date(year, month, _calendar.monthrange(year, month)[1])
        return d - timedelta(days=(d.weekday() - weekday) % 7)

    def observed(d: date) -> date:
        return d - timedelta(days=1) if d.weekday() == 5 else d + timedelta(days=1) if d.weekday() == 6 else d

    thanksgiving = nth(3, 4, 11)
    return sorted(
        {
            observed(date(year, 1, 1)),
            nth(0, -1, 5),  # Memorial Day
            observed(date(year, 7, 4)),
            nth(0, 1, 9),  # Labor Day
            thanksgiving,
            thanksgiving + timedelta(days=1),
            observed(date(year, 12, 25)),
        }
    )


def default_end(today: date | None = None) -> date:
    """Last day of the last full calendar quarter before ``today`` (2026-11-25 -> 2026-09-30)."""
    today = today or date.today()
    return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1) - timedelta(days=1)


def _window_start(end: date, months: int) -> date:
    k = end.year * 12 + end.month - 1 - (months - 1)
    return date(k // 12, k % 12 + 1, 1)


#: creation-volume seasonality by calendar month (Q4 strongest, summer and December dips)
SEASON_CREATE = np.array([0.90, 0.95, 1.05, 1.00, 1.00, 1.05, 0.90, 0.85, 1.05, 1.18, 1.12, 0.88])
#: activity-volume seasonality by calendar month
SEASON_ACT = np.array([0.97, 1.0, 1.02, 1.0, 1.0, 1.0, 0.94, 0.88, 1.02, 1.04, 1.02, 0.86])
#: marketing spend seasonality (spring and autumn events)
SEASON_MKT = np.array([0.85, 0.95, 1.15, 1.1, 1.0, 0.9, 0.8, 0.8, 1.15, 1.2, 1.05, 0.75])


#: months simulated before the window so that it opens with a realistic open pipeline
BURN_IN_MONTHS = 6


@dataclass(frozen=True)
class _Calendar:
    start: date  # first day of the window
    end: date
    days: np.ndarray  # datetime64[D] working days from the burn-in start, extended well past end
    n: int  # working days up to and including end
    w0: int  # index of the first working day of the window
    holidays: tuple[date, ...]
    month: np.ndarray  # calendar month 1..12 of each working day
    qfirst: np.ndarray  # index of the first working day of the day's quarter
    qlast: np.ndarray  # index of the last working day of the day's quarter
    quarter_of_year: np.ndarray  # 1..4

    @property
    def t_end(self) -> int:
        return self.n * DAY_S - 1

    @property
    def t_start(self) -> int:
        return self.w0 * DAY_S

    def day_index(self, T: np.ndarray) -> np.ndarray:
        return np.clip(T // DAY_S, 0, len(self.days) - 1)

    def date_of(self, T: np.ndarray) -> np.ndarray:
        return self.days[self.day_index(T)]

    def ts(self, T: np.ndarray) -> np.ndarray:
        """Working-time seconds -> local wall time (datetime64[s]); negative -> NaT."""
        T = np.asarray(T, dtype=np.int64)
        out = self.date_of(T).astype("datetime64[s]") + np.timedelta64(WORK_START_H * 3600, "s")
        out = out + (T % DAY_S).astype("timedelta64[s]")
        return np.where(T < 0, np.datetime64("NaT", "s"), out)

    def first_day_on_or_after(self, d: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.days, d, side="left")

    def last_day_on_or_before(self, d: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.days, d, side="right") - 1


def _make_calendar(start: date, end: date) -> _Calendar:
    horizon = date(end.year + 6, 12, 31)
    sim_start = _window_start(start, BURN_IN_MONTHS + 1)
    hol = sorted({h for y in range(sim_start.year - 1, horizon.year + 1) for h in _us_holidays(y)})
    all_days = np.arange(np.datetime64(sim_start, "D"), np.datetime64(horizon, "D") + 1)
    weekday = (all_days.astype(np.int64) - 4) % 7  # 1970-01-01 was a Thursday (weekday 3)
    mask = (weekday < 5) & ~np.isin(all_days, np.array(hol, dtype="datetime64[D]"))
    days = all_days[mask]
    n = int(np.searchsorted(days, np.datetime64(end, "D"), side="right"))
    w0 = int(np.searchsorted(days, np.datetime64(start, "D"), side="left"))
    months = days.astype("datetime64[M]").astype(np.int64)
    month = months % 12 + 1
    q = months // 3
    qfirst = np.searchsorted(q, q, side="left")
    qlast = np.searchsorted(q, q, side="right") - 1
    window_hol = tuple(h for h in hol if start <= h <= date(end.year + 1, 12, 31))
    return _Calendar(start, end, days, n, w0, window_hol, month, qfirst, qlast, (month - 1) // 3 + 1)


# -- small vectorised helpers -----------------------------------------------------------------


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def _tod(rng: np.random.Generator, n: int) -> np.ndarray:
    """Time of day in working seconds, busiest mid-day."""
    return (rng.beta(1.8, 1.8, n) * (DAY_S - 1)).astype(np.int64)


def _poisson_events(rng: np.random.Generator, rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts per (row, day) cell -> (row, day) of every event."""
    counts = rng.poisson(np.maximum(rates, 0.0)).ravel()
    nz = np.flatnonzero(counts)
    cell = np.repeat(nz, counts[nz])
    return np.divmod(cell, rates.shape[1])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _uniform_int(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    lo, hi = int(lo), int(hi)
    return rng.integers(lo, max(hi, lo + 1), n)


def _add_months(d: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Dates plus whole months, the day clipped to the target month's length (Jan 31 + 1 = Feb 28)."""
    d = np.asarray(d, dtype="datetime64[D]")
    m0 = d.astype("datetime64[M]")
    day = (d - m0.astype("datetime64[D]")).astype(np.int64)
    target = m0 + np.asarray(months).astype("timedelta64[M]")
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    return target.astype("datetime64[D]") + np.minimum(day, length - 1).astype("timedelta64[D]")


# -- the organisation (global part) -----------------------------------------------------------


@dataclass
class _Org:
    seed: int
    n_reps: int
    months: int
    cal: _Calendar
    widths: dict[str, int]
    team_names: list[str]
    team_region: list[int]
    team_focus: np.ndarray
    team_members: list[np.ndarray]
    rep_team: np.ndarray
    role: np.ndarray
    hire: np.ndarray  # datetime64[D]
    leave: np.ndarray  # datetime64[D], NaT while employed
    hire_w: np.ndarray  # first working-day index in the window
    end_w: np.ndarray  # last working-day index in the window
    skill: np.ndarray
    hustle: np.ndarray
    quality: np.ndarray
    morale: np.ndarray
    manager: np.ndarray  # global index of the rep's manager, -1 for managers
    first_name: np.ndarray
    last_name: np.ndarray


def _id_widths(reps: int, months: int) -> dict[str, int]:
    scale = reps * months
    return {
        "rep": max(4, len(str(reps))),
        "account": max(5, len(str(scale * 60))),
        "lead": max(6, len(str(scale * 60))),
        "opp": max(6, len(str(scale * 40))),
        "act": max(8, len(str(scale * 2000))),
        "contract": max(5, len(str(scale * 20))),
    }


def _team_roles(size: int) -> list[int]:
    n_sdr = max(1, size // 4)
    n_am = max(1, round(size * 0.12))
    n_ae = max(1, size - 1 - n_sdr - n_am)
    return [MGR] + [SDR] * n_sdr + [AE] * n_ae + [AM] * n_am


def _build_org(reps: int, months: int, seed: int, end: date) -> _Org:
    start = _window_start(end, months)
    cal = _make_calendar(start, end)
    rng = _rng(seed, 0)
    n_teams = max(1, math.ceil(reps / 8))
    base, extra = divmod(reps, n_teams)
    sizes = [base + (1 if i < extra else 0) for i in range(n_teams)]
    team_names, team_region, team_focus, members, rep_team, role = [], [], [], [], [], []
    pos = 0
    for t, size in enumerate(sizes):
        region, focus = t % len(REGIONS), TEAM_FOCUS[t % len(TEAM_FOCUS)]
        name = f"{REGIONS[region]} {SEGMENTS[focus]}"
        if t >= len(REGIONS) * len(TEAM_FOCUS):
            name += f" {t // (len(REGIONS) * len(TEAM_FOCUS)) + 1}"
        roles = _team_roles(size)
        team_names.append(name)
        team_region.append(region)
        team_focus.append(focus)
        members.append(np.arange(pos, pos + len(roles)))
        rep_team += [t] * len(roles)
        role += roles
        pos += len(roles)
    n = pos
    role_a = np.array(role)
    rep_team_a = np.array(rep_team)
    window_days = (end - start).days + 1

    skill = rng.normal(0.0, 1.0, n)
    hustle = np.exp(rng.normal(0.0, 0.22, n))
    quality = 0.55 * skill + 0.85 * rng.normal(0.0, 1.0, n)
    morale = 0.4 * skill + 0.9 * rng.normal(0.0, 1.0, n)
    start64 = np.datetime64(start, "D")
    end64 = np.datetime64(end, "D")
    # hires: managers long before the window; 12 % of the others during it
    hire = start64 - _uniform_int(rng, 20, 2200, n).astype("timedelta64[D]")
    hire = np.where(role_a == MGR, start64 - _uniform_int(rng, 400, 3000, n).astype("timedelta64[D]"), hire)
    in_window = (rng.random(n) < 0.12) & (role_a != MGR) & (window_days > 120)
    hire_in = start64 + _uniform_int(rng, 30, window_days - 60, n).astype("timedelta64[D]")
    hire = np.where(in_window, hire_in, hire)
    # leavers: 7 % of the others hired before the window
    leaver = (rng.random(n) < 0.07) & (role_a != MGR) & ~in_window & (window_days > 150)
    leave_at = start64 + _uniform_int(rng, 90, window_days - 30, n).astype("timedelta64[D]")
    leave = np.where(leaver, leave_at, np.datetime64("NaT", "D"))
    # the documented leaver: first AE of the first team, mid-window, with a replacement hire
    aes0 = members[0][role_a[members[0]] == AE]
    if window_days > 90:
        who = aes0[0]
        leave[who] = start64 + np.timedelta64(int(window_days * 0.55), "D")
        hire[who] = min(hire[who], start64 - np.timedelta64(400, "D"))
        in_window[who] = False
        if len(aes0) > 1:
            repl = aes0[-1]
            hire[repl] = leave[who] - np.timedelta64(14, "D")
            leave[repl] = np.datetime64("NaT", "D")
            in_window[repl] = True
    hire = np.minimum(hire, end64 - np.timedelta64(7, "D"))
    hire_w = np.maximum(cal.first_day_on_or_after(hire), 0)
    end_w = np.where(np.isnat(leave), cal.n - 1, np.minimum(cal.last_day_on_or_before(leave), cal.n - 1))

    manager = np.full(n, -1)
    for m in members:
        manager[m[1:]] = m[0]
    if n <= len(FIRST_NAMES) * len(LAST_NAMES):
        pair = rng.choice(len(FIRST_NAMES) * len(LAST_NAMES), size=n, replace=False)
    else:
        pair = rng.integers(0, len(FIRST_NAMES) * len(LAST_NAMES), n)
    return _Org(
        seed=seed,
        n_reps=n,
        months=months,
        cal=cal,
        widths=_id_widths(reps, months),
        team_names=team_names,
        team_region=team_region,
        team_focus=np.array(team_focus),
        team_members=members,
        rep_team=rep_team_a,
        role=role_a,
        hire=hire,
        leave=leave,
        hire_w=hire_w,
        end_w=end_w,
        skill=skill,
        hustle=hustle,
        quality=quality,
        morale=morale,
        manager=manager,
        first_name=pair // len(LAST_NAMES),
        last_name=pair % len(LAST_NAMES),
    )


# -- column containers ---------------------------------------------------------------------------
#
# Generators return plain numpy columns tagged with how to render them:
#   ("id", kind, ints)        global sequence number -> "<prefix><zero-padded number>", -1 = null
#   ("cat", codes, vocab)     category code -> string, -1 = null
#   ("ts", T)                 working-time seconds -> timestamp, -1 = null
#   ("dt", datetime64[s])     timestamp given directly
#   ("date", datetime64[D])   date, NaT = null
#   ("num", float)            NaN = null
#   ("str", object array)     literal strings (None = null)

ID_PREFIX = {"rep": "R", "account": "A", "lead": "L", "opp": "O", "act": "ACT", "contract": "C"}


def _arrow_type(col_type: str) -> pa.DataType:
    return {
        "timestamp": pa.timestamp(TS_UNIT),
        "date": pa.date32(),
        "money": pa.float64(),
        "number": pa.float64(),
        "integer": pa.int64(),
    }.get(col_type, pa.string())


def _arrow_schema(name: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, _arrow_type(c.type)) for c in TABLES[name].columns])


def _concat_parts(parts: list[dict]) -> dict:
    """Concatenate the tagged columns of several teams (array fields are joined, the rest kept)."""
    out = {}
    for key, spec in parts[0].items():
        out[key] = tuple(
            np.concatenate([p[key][i] for p in parts]) if isinstance(x, np.ndarray) else x for i, x in enumerate(spec)
        )
    return out


def _to_arrow(name: str, cols: dict, org: _Org) -> pa.Table:
    schema = _arrow_schema(name)
    missing = set(schema.names) ^ set(cols)
    if missing:
        raise AssertionError(f"sample generator: table {name} columns differ from the schema: {sorted(missing)}")
    arrays = []
    for field in schema:
        spec = cols[field.name]
        kind = spec[0]
        if kind == "id":
            nums = np.asarray(spec[2], dtype=np.int64)
            digits = pc.utf8_lpad(pa.array(nums + 1, mask=nums < 0).cast(pa.string()), org.widths[spec[1]], "0")
            arr = pc.binary_join_element_wise(ID_PREFIX[spec[1]], digits, "")
        elif kind == "cat":
            codes = np.asarray(spec[1], dtype=np.int64)
            arr = pa.array(list(spec[2]), pa.string()).take(pa.array(codes, mask=codes < 0))
        elif kind == "ts":
            T = np.asarray(spec[1], dtype=np.int64)
            arr = pa.array(org.cal.ts(T).astype(f"datetime64[{TS_UNIT}]"), mask=T < 0)
        elif kind == "dt":
            v = np.asarray(spec[1]).astype(f"datetime64[{TS_UNIT}]")
            arr = pa.array(v, mask=np.isnat(v))
        elif kind == "date":
            v = np.asarray(spec[1]).astype("datetime64[D]")
            arr = pa.array(v, mask=np.isnat(v)).cast(pa.date32())
        elif kind == "num":
            v = np.asarray(spec[1], dtype=np.float64)
            arr = pa.array(v, mask=np.isnan(v))
        elif kind == "str":
            arr = pa.array(list(spec[1]), pa.string())
        elif kind == "name3":
            words = [pa.array(list(v), pa.string()).take(pa.array(c)) for v, c in zip((COMPANY_A, COMPANY_B, COMPANY_C), spec[1:])]
            arr = pc.binary_join_element_wise(*words, " ")
        else:  # pragma: no cover
            raise AssertionError(kind)
        arrays.append(arr.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


# -- global tables ---------------------------------------------------------------------------------


def _reps_table(org: _Org) -> dict:
    n = org.n_reps
    names = np.array([f"{FIRST_NAMES[f]} {LAST_NAMES[l]}" for f, l in zip(org.first_name, org.last_name)], dtype=object)
    return {
        "rep_id": ("id", "rep", np.arange(n)),
        "name": ("str", names),
        "team": ("cat", org.rep_team, tuple(org.team_names)),
        "region": ("cat", np.array(org.team_region)[org.rep_team], REGIONS),
        "manager_id": ("id", "rep", org.manager),
        "role": ("cat", org.role, ROLES),
        "hire_date": ("date", org.hire),
        "end_date": ("date", org.leave),
    }


#: monthly fully-loaded cost per role (SDR, AE, AM, manager order resolved below)
_ROLE_COST = {SDR: 7_500.0, AE: 13_000.0, AM: 11_000.0, MGR: 17_000.0}


def _spend_table(org: _Org) -> dict:
    rng = _rng(org.seed, 1)
    cal = org.cal
    m0 = np.datetime64(cal.start, "M")
    n_m = org.months
    mstart = (m0 + np.arange(n_m)).astype("datetime64[D]")
    mend = np.minimum((m0 + np.arange(1, n_m + 1)).astype("datetime64[D]") - 1, np.datetime64(cal.end, "D"))
    ndays = (mend - mstart).astype(np.int64) + 1
    # days employed in each month
    lo = np.maximum(org.hire[:, None], mstart[None, :])
    leave = np.where(np.isnat(org.leave), np.datetime64(cal.end, "D"), org.leave)
    hi = np.minimum(leave[:, None], mend[None, :])
    frac = np.clip((hi - lo).astype(np.int64) + 1, 0, None) / ndays[None, :]
    cost = np.array([_ROLE_COST[r] for r in org.role])
    sales = (frac * cost[:, None]).sum(axis=0) * 1.12 * np.exp(rng.normal(0, 0.03, n_m))
    month_no = mstart.astype("datetime64[M]").astype(np.int64) % 12
    headcount = frac.sum(axis=0)
    marketing = headcount * 2_400.0 * SEASON_MKT[month_no] * np.exp(rng.normal(0, 0.08, n_m))
    k = np.repeat(np.arange(n_m), 2)
    return {
        "period_start": ("date", mstart[k]),
        "period_end": ("date", mend[k]),
        "category": ("cat", np.tile([SP_SALES, SP_MKT], n_m), SPEND_CATEGORIES),
        "amount": ("num", np.round(np.stack([sales, marketing], axis=1).ravel(), 2)),
    }


# -- deal simulation --------------------------------------------------------------------------------

# Per deal type (rows: new_business, expansion, renewal) and stage (Prospecting..Contract Sent):
# probability to move forward when a decision is taken. Demo -> Negotiation is the big leak.
P_ADV = np.array(
    [
        [0.88, 0.84, 0.88, 0.46, 0.85, 0.85],
        [0.92, 0.88, 0.90, 0.72, 0.86, 0.90],
        [0.95, 0.95, 0.95, 0.95, 0.91, 0.93],
    ]
)
P_NURTURE = np.array([0.0, 0.04, 0.03, 0.03, 0.0, 0.0, 0.0])  # by stage; new business only
P_BACK = np.array([0.0, 0.0, 0.0, 0.0, 0.07, 0.12, 0.0])  # Negotiation -> Demo, Contract Sent -> Negotiation
P_REOPEN = 0.025
P_SKIP_RESEARCH = np.array([[0.30, 0.12, 0.05], [0.70, 0.70, 0.70], [1.0, 1.0, 1.0]])  # renewals skip to Negotiation
P_SKIP_NEGOTIATION = np.array([[0.15, 0.05, 0.02], [0.20, 0.15, 0.10], [0.0, 0.0, 0.0]])
#: median working days in a stage, by deal type and segment
DUR_BASE = np.array([[2.2, 6.0, 14.0], [2.0, 4.0, 8.0], [3.0, 3.5, 5.0]])
STAGE_FACTOR = np.array([1.0, 1.0, 1.3, 1.0, 1.6, 0.8, 10.0])
SEG_LOGIT = np.array([0.15, 0.0, -0.25])


def _reasons(**p: float) -> np.ndarray:
    """Loss-reason probabilities by name, as a vector in schema.LOSS_REASONS order."""
    unknown = set(p) - set(LOSS)
    assert not unknown, f"not in schema.LOSS_REASONS: {unknown}"
    return np.array([p.get(r, 0.0) for r in LOSS])


#: loss reasons by the stage the deal was lost from
_LR_EARLY = _reasons(price=0.05, trust=0.03, competitor=0.05, no_need=0.35, no_urgency=0.20, no_authority=0.22, other=0.10)
_LR_MID = _reasons(price=0.15, trust=0.10, competitor=0.25, no_need=0.15, no_urgency=0.22, no_authority=0.05, other=0.08)
_LR_LATE = _reasons(price=0.40, trust=0.15, competitor=0.25, no_need=0.03, no_urgency=0.09, no_authority=0.03, other=0.05)
_LR_NURTURE = _reasons(competitor=0.05, no_need=0.30, no_urgency=0.60, other=0.05)
LOSS_BY_STAGE = np.array([_LR_EARLY, _LR_EARLY, _LR_MID, _LR_MID, _LR_LATE, _LR_LATE, _LR_NURTURE])
LOSS_RENEWAL = _reasons(price=0.35, trust=0.10, competitor=0.30, no_need=0.20, no_urgency=0.02, other=0.03)


@dataclass
class _Sim:
    ent_deal: np.ndarray
    ent_stage: np.ndarray
    ent_T: np.ndarray
    ent_from: np.ndarray
    outcome: np.ndarray  # WON / LOST (simulated, possibly after the snapshot)
    pulled: np.ndarray  # closed earlier to make the quarter


def _simulate(rng: np.random.Generator, cal: _Calendar, dtype, seg, stage0, T0, shift) -> _Sim:
    n = len(T0)
    row = _DT_ROW[dtype]
    parts = [(np.arange(n), stage0.copy(), T0.copy(), np.full(n, -1))]
    cur, T = stage0.copy(), T0.copy()
    alive = np.ones(n, bool)
    reopened = np.zeros(n, bool)
    outcome = np.full(n, -1)
    max_steps = 40
    for step in range(max_steps):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        k = idx.size
        s, r_, sg = cur[idx], row[idx], seg[idx]
        dur = DUR_BASE[r_, sg] * STAGE_FACTOR[s] * np.exp(rng.normal(0.0, 0.6, k))
        u1, u2, u3 = rng.random(k), rng.random(k), rng.random(k)
        in_nur = s == NUR
        p_nur = np.where(r_ == 0, P_NURTURE[s], 0.0)
        p_back = P_BACK[s]
        sc = np.minimum(s, CON)
        # year-end budgets: late-stage decisions taken in Q4 go forward more often
        q4 = cal.quarter_of_year[cal.day_index(T[idx])] == 4
        p_adv = _sigmoid(_logit(P_ADV[r_, sc]) + shift[idx] + np.where(q4 & (s >= NEG), 0.5, 0.0))
        go_nur = ~in_nur & (u1 < p_nur)
        go_back = ~in_nur & ~go_nur & (u1 < p_nur + p_back)
        decide = ~in_nur & ~go_nur & ~go_back
        adv = decide & (u2 < p_adv)
        nxt = np.where(adv, np.where(s == CON, WON, s + 1), LOST)
        skip_res = adv & (s == QUA) & (u3 < P_SKIP_RESEARCH[r_, sg])
        nxt = np.where(skip_res, np.where(dtype[idx] == REN, NEG, DEM), nxt)
        skip_neg = adv & (s == DEM) & (u3 < P_SKIP_NEGOTIATION[r_, sg])
        nxt = np.where(skip_neg, CON, nxt)
        nxt = np.where(go_nur, NUR, nxt)
        nxt = np.where(go_back, np.where(s == NEG, DEM, NEG), nxt)
        nxt = np.where(in_nur, np.where(u2 < 0.45, QUA, LOST), nxt)
        if step == max_steps - 1:
            nxt = np.where((nxt == WON) | (nxt == LOST), nxt, LOST)
        dur = np.where(nxt == LOST, dur * 1.3, dur)
        Tn = T[idx] + np.maximum(600, (dur * DAY_S).astype(np.int64))
        parts.append((idx, nxt, Tn, s))
        closed = (nxt == WON) | (nxt == LOST)
        ro = (nxt == LOST) & ~reopened[idx] & (dtype[idx] != REN) & (rng.random(k) < P_REOPEN)
        if ro.any():
            j = idx[ro]
            T_re = Tn[ro] + _uniform_int(rng, 15, 110, int(ro.sum())) * DAY_S + _tod(rng, int(ro.sum()))
            st_re = np.where(rng.random(int(ro.sum())) < 0.5, QUA, DEM)
            parts.append((j, st_re, T_re, np.full(len(j), LOST)))
            reopened[j] = True
            cur[j], T[j] = st_re, T_re
        fin = closed & ~ro
        alive[idx[fin]] = False
        outcome[idx[fin]] = nxt[fin]
        cont = ~closed
        cur[idx[cont]], T[idx[cont]] = nxt[cont], Tn[cont]
    ent_deal = np.concatenate([p[0] for p in parts])
    order = np.argsort(ent_deal, kind="stable")
    ent_deal = ent_deal[order]
    ent_stage = np.concatenate([p[1] for p in parts])[order]
    ent_T = np.concatenate([p[2] for p in parts])[order]
    ent_from = np.concatenate([p[3] for p in parts])[order]
    # quarter-end push: a won deal that would close early in a quarter is often pulled into the
    # last days of the previous one (more often into Q4)
    # (won deals have at least three entries, so last - 2 is the same deal's)
    last = np.r_[np.flatnonzero(np.diff(ent_deal)), len(ent_deal) - 1]
    prev2_T = ent_T[np.maximum(last - 2, 0)]
    d = cal.day_index(ent_T[last])
    qf = cal.qfirst[d]
    prev_q = np.maximum(qf - 1, 0)
    p_pull = np.where(cal.quarter_of_year[prev_q] == 4, 0.75, 0.5)
    target = cal.qlast[prev_q] - _uniform_int(rng, 0, 7, n)
    new_T = target * DAY_S + _tod(rng, n)
    pull = (
        (outcome == WON) & (qf > 0) & (d - qf < 25) & (rng.random(n) < p_pull) & (new_T > prev2_T + 1200) & (new_T < ent_T[last])
    )
    # the final step is rushed: close moves to the quarter's last days, the previous entry too
    # if it was later than halfway
    ent_T[last[pull]] = new_T[pull]
    l1 = last[pull] - 1
    ent_T[l1] = np.minimum(ent_T[l1], (prev2_T[pull] + new_T[pull]) // 2)
    return _Sim(ent_deal, ent_stage, ent_T, ent_from, outcome, pull)


# -- one team -----------------------------------------------------------------------------------------


@dataclass
class _Offsets:
    account: int = 0
    lead: int = 0
    opp: int = 0
    act: int = 0
    contract: int = 0


class _Team:
    """Everything one team generates; members are indexed locally (0 = the manager)."""

    def __init__(self, org: _Org, t: int):
        self.org, self.t = org, t
        self.rng = _rng(org.seed, 2, t)
        self.cal = org.cal
        self.g = org.team_members[t]  # global rep indices
        g = self.g
        self.role = org.role[g]
        self.hire_w = org.hire_w[g]
        self.end_w = org.end_w[g]
        self.end_T = (self.end_w + 1) * DAY_S - 1
        self.skill, self.hustle, self.quality = org.skill[g], org.hustle[g], org.quality[g]
        n = self.cal.n
        days = np.arange(n)
        self.active = (days[None, :] >= self.hire_w[:, None]) & (days[None, :] <= self.end_w[:, None])
        since = (self.cal.days[:n][None, :] - org.hire[g][:, None]).astype(np.int64)
        self.ramp = np.clip(0.35 + 0.65 * since / 90.0, 0.35, 1.0)
        self.season_create = SEASON_CREATE[self.cal.month[:n] - 1]
        self.season_act = SEASON_ACT[self.cal.month[:n] - 1]
        # successor of each rep who leaves: same role, no end date, hired by then; else the manager
        leaves = self.end_w < n - 1
        self.succ = np.arange(len(g))
        for i in np.flatnonzero(leaves):
            cand = np.flatnonzero((self.role == self.role[i]) & ~leaves & (self.hire_w <= self.end_w[i] + 1))
            self.succ[i] = cand[0] if len(cand) else 0
        self.focus = org.team_focus[t]

    # who works a record at time T: its owner, or the owner's successor after the owner left
    def rep_at(self, owner: np.ndarray, T: np.ndarray) -> np.ndarray:
        return np.where(T > self.end_T[owner], self.succ[owner], owner)

    def pick_active(self, role: int, day: np.ndarray) -> np.ndarray:
        """A random member of ``role`` active on each working day (the manager if none)."""
        cand = np.flatnonzero(self.role == role)
        if len(cand) == 0 or len(day) == 0:
            return np.zeros(len(day), dtype=np.int64)
        w = self.active[cand][:, np.minimum(day, self.cal.n - 1)].T.astype(float)
        tot = w.sum(axis=1)
        pick = _choice_rows(self.rng, np.where(tot[:, None] > 0, w, 1.0))
        return np.where(tot > 0, cand[pick], 0)

    # ---------------------------------------------------------------------------------------------
    def generate(self, off: _Offsets) -> tuple[dict[str, dict], dict[str, int]]:
        """All tables of this team with global IDs from ``off``, and how many IDs it used."""
        rng, cal, org = self.rng, self.cal, self.org
        n, t_end = cal.n, cal.t_end
        acc = _AccountBook(self)

        # ---- leads (owned by SDRs) ----------------------------------------------------------
        sdr = np.flatnonzero(self.role == SDR)
        rates = 5.0 * self.active[sdr] * self.ramp[sdr] * self.season_create[None, :] * self.hustle[sdr, None]
        r, d = _poisson_events(rng, rates)
        owner = sdr[r]
        T = d * DAY_S + _tod(rng, len(d))
        o = np.argsort(T, kind="stable")
        owner, T = owner[o], T[o]
        nl = len(T)
        src = rng.choice(5, nl, p=[0.40, 0.30, 0.10, 0.12, 0.08])
        unassigned = (src == SRC_IN) & (rng.random(nl) < 0.02)
        sk = self.skill[owner]
        med_delay = np.array([2700.0, 14400.0, 7200.0, 36000.0, 10800.0])[src]
        delay = (med_delay * np.exp(rng.normal(0, 1.0, nl) - 0.35 * sk)).astype(np.int64) + 60
        p_never = np.array([0.06, 0.01, 0.03, 0.15, 0.05])[src] * np.exp(-0.5 * sk)
        never = unassigned | (rng.random(nl) < p_never)
        resp_T = np.where(never, -1, T + delay)
        resp_T = np.where(resp_T > t_end, -1, resp_T)
        p_conv = _sigmoid(_logit(np.array([0.30, 0.15, 0.45, 0.18, 0.34])[src]) + 0.4 * sk)
        will_convert = ~never & (rng.random(nl) < p_conv)
        dec_delay = np.where(will_convert, 4.0, 7.0) * np.exp(rng.normal(0, 0.7, nl))
        dec_T = T + delay + np.maximum(DAY_S // 4, (dec_delay * DAY_S).astype(np.int64))
        decided = ~never & (dec_T <= t_end)
        status = np.full(nl, LS_OPEN)
        converted = decided & will_convert
        status[converted] = LS_CONV
        stale_q = rng.random(nl) < 0.10
        status[decided & ~will_convert] = np.where(stale_q, LS_QUAL, LS_DISQ)[decided & ~will_convert]
        progressed = ~decided & ~never & will_convert & (t_end - (T + delay) > 0.5 * (dec_T - T - delay))
        status[progressed & (resp_T >= 0)] = LS_QUAL
        old_silent = never & ~unassigned & (t_end - T > 20 * DAY_S) & (rng.random(nl) < 0.5)
        status[old_silent] = LS_DISQ
        lead_owner = np.where(unassigned, -1, owner)
        lead_acct = acc.for_leads(T)
        # a rep who left hands open leads to the successor
        last_touch = np.where(decided, dec_T, t_end)
        lead_owner = np.where(lead_owner >= 0, self.rep_at(np.maximum(lead_owner, 0), last_touch), -1)

        # ---- new-business deals: converted leads + AE-sourced --------------------------------
        ci = np.flatnonzero(converted)
        conv_T = dec_T[ci]
        deals = _DealBook(self, acc)
        deals.add(
            owner=self.pick_active(AE, conv_T // DAY_S),
            T0=conv_T,
            acct=lead_acct[ci],
            dtype=NB,
            src=src[ci],
            stage0=np.where(rng.random(len(ci)) < 0.6, QUA, PRO),
            lead=ci,
        )
        ae = np.flatnonzero(self.role == AE)
        ae_rate = np.array([1.05, 0.62, 0.25])[self.focus]
        rates = ae_rate * self.active[ae] * self.ramp[ae] * self.season_create[None, :] * self.hustle[ae, None]
        r, d = _poisson_events(rng, rates)
        T_self = d * DAY_S + _tod(rng, len(d))
        m = len(d)
        deals.add(
            owner=ae[r],
            T0=T_self,
            acct=acc.new(T_self - _uniform_int(rng, 0, 3 * DAY_S, m)),
            dtype=NB,
            src=rng.choice([SRC_OUT, SRC_REF, SRC_PART, SRC_EVT], m, p=[0.70, 0.15, 0.10, 0.05]),
            stage0=np.full(m, PRO),
        )
        nb = deals.simulate_pending()

        # ---- expansions on won new-business accounts ------------------------------------------
        t_start = cal.t_start
        won_T = deals.outcome_T(nb, WON)
        won = nb[(won_T <= t_end) & (won_T >= t_start)]
        close_T = deals.close_T[won]
        p_exp = np.array([0.22, 0.32, 0.45])[acc.segment_of(deals.acct[won])]
        e = rng.random(len(won)) < p_exp
        T_exp = close_T[e] + _uniform_int(rng, 40, 250, int(e.sum())) * DAY_S + _tod(rng, int(e.sum()))
        ok = T_exp <= t_end
        parent = won[e][ok]
        T_exp = T_exp[ok]
        if len(parent):
            am_owner = self.pick_active(AM, T_exp // DAY_S)
            am_owner = np.where(am_owner == 0, self.rep_at(deals.owner[parent], T_exp), am_owner)
            addon = 1 + rng.integers(0, 3, len(parent))
            addon = np.where(addon == deals.product[parent], 1 + addon % 3, addon)
            deals.add(
                owner=am_owner,
                T0=T_exp,
                acct=deals.acct[parent],
                dtype=EXP,
                src=np.full(len(parent), SRC_CUST),
                stage0=np.full(len(parent), QUA),
                product=addon,
                annual=deals.annual[parent] * rng.uniform(0.15, 0.45, len(parent)),
                months=np.full(len(parent), 12),
            )
            deals.simulate_pending()

        # ---- subscriptions and renewals ---------------------------------------------------------
        subs = _SubscriptionBook()
        end64 = np.datetime64(cal.end, "D")
        won_T = deals.outcome_T(np.arange(deals.count), WON)
        gen = np.flatnonzero((won_T <= t_end) & (won_T >= t_start))
        new_sub = subs.add(deals, gen, cal.date_of(deals.close_T[gen]), np.full(len(gen), -1))
        while len(new_sub):
            end_d = subs.end[new_sub]
            lead_days = _uniform_int(rng, 45, 90, len(new_sub)).astype("timedelta64[D]")
            w = cal.first_day_on_or_after(end_d - lead_days)
            T_r = w * DAY_S + _tod(rng, len(w))
            src_deal = subs.deal[new_sub]
            silent = rng.random(len(new_sub)) < 0.05  # customer gave notice: no renewal deal
            ok = (w < n) & ~silent & (T_r > deals.close_T[src_deal])
            sub_i, T_r = new_sub[ok], T_r[ok]
            if len(sub_i) == 0:
                break
            src_deal = subs.deal[sub_i]
            am_owner = self.pick_active(AM, T_r // DAY_S)
            am_owner = np.where(am_owner == 0, self.rep_at(deals.owner[src_deal], T_r), am_owner)
            deals.add(
                owner=am_owner,
                T0=T_r,
                acct=deals.acct[src_deal],
                dtype=REN,
                src=np.full(len(sub_i), SRC_CUST),
                stage0=np.full(len(sub_i), QUA),
                product=deals.product[src_deal],
                annual=subs.annual[sub_i] * rng.uniform(0.97, 1.10, len(sub_i)),
                months=deals.months[src_deal],
                expected=subs.end[sub_i],
            )
            ren = deals.simulate_pending()
            # a won renewal continues the contract the day after it ends; one that starts after
            # the snapshot is signed but not active yet and gets no row
            start = subs.end[sub_i] + np.timedelta64(1, "D")
            won_r = (deals.outcome_T(ren, WON) <= t_end) & (start <= end64)
            new_sub = subs.add(deals, ren[won_r], start[won_r], sub_i[won_r])

        # ---- finish deals, then activities, quotas and pulse ------------------------------------
        # what the window keeps: leads created in it; deals created in it or still open at its
        # start (with their earlier stage history); activities in it; the accounts they name
        D = deals.finish()
        lead_keep = T >= t_start
        lead_rank = np.cumsum(lead_keep) - 1
        A = _activities(self, deals, D, owner, resp_T, dec_T, converted, lead_acct, lead_keep)
        used = np.zeros(acc.count, bool)
        used[lead_acct[lead_keep]] = True
        used[deals.acct[D["keep"]]] = True
        acc_rank = acc.finish(used)
        out = {"accounts": acc.columns(off.account)}
        lead_opp = np.full(nl, -1)
        from_lead = (D["lead"] >= 0) & D["keep"]
        lead_opp[D["lead"][from_lead]] = off.opp + D["rank"][from_lead]
        k = lead_keep
        nl_kept = int(k.sum())
        out["leads"] = {
            "lead_id": ("id", "lead", off.lead + np.arange(nl_kept)),
            "created_at": ("ts", T[k]),
            "owner_id": ("id", "rep", np.where(lead_owner >= 0, self.g[np.maximum(lead_owner, 0)], -1)[k]),
            "source": ("cat", src[k], LEAD_SOURCES),
            "status": ("cat", status[k], LEAD_STATUSES),
            "first_response_at": ("ts", resp_T[k]),
            "converted_at": ("ts", np.where(converted, dec_T, -1)[k]),
            "opportunity_id": ("id", "opp", lead_opp[k]),
            "account_id": ("id", "account", off.account + acc_rank[lead_acct[k]]),
        }
        out["opportunities"], out["stage_history"] = deals.columns(D, off, acc_rank)
        out["activities"] = A.columns(off, acc_rank, D["rank"], lead_rank)
        out["subscriptions"] = subs.columns(off, acc_rank, deals)
        out["quotas"] = _quotas(self, deals, D, A)
        out["pulse"] = _pulse(self)
        counts = {
            "account": int(used.sum()),
            "lead": nl_kept,
            "opp": int(D["keep"].sum()),
            "act": A.count,
            "contract": subs.count,
        }
        return out, counts


class _AccountBook:
    """Accounts of one team; local index = creation call order, IDs follow creation time."""

    def __init__(self, team: _Team):
        self.team = team
        self.T: list[np.ndarray] = []
        self.count = 0
        # segments come from a stream of their own, one draw per account in local order, so a
        # segment never depends on when it is first asked for
        self._seg_rng = _rng(team.org.seed, 3, team.t)
        self._seg = np.zeros(0, np.int64)

    def new(self, T: np.ndarray) -> np.ndarray:
        T = np.maximum(np.asarray(T, dtype=np.int64), 0)
        idx = self.count + np.arange(len(T))
        self.T.append(T)
        self.count += len(T)
        return idx

    def segment_of(self, acct: np.ndarray) -> np.ndarray:
        if len(self._seg) < self.count:
            extra = self._seg_rng.choice(3, self.count - len(self._seg), p=FOCUS_MIX[self.team.focus])
            self._seg = np.r_[self._seg, extra]
        return self._seg[acct]

    def for_leads(self, T: np.ndarray) -> np.ndarray:
        """Accounts of leads (sorted by time): mostly new companies, 30 % an earlier one again."""
        rng = self.team.rng
        nl = len(T)
        if nl == 0:
            return np.zeros(0, np.int64)
        is_new = rng.random(nl) >= 0.30
        is_new[0] = True
        new_idx = self.new(T[is_new] - _uniform_int(rng, 0, 900, int(is_new.sum())))
        seen = np.cumsum(is_new)  # new accounts up to and including this lead
        out = np.empty(nl, dtype=np.int64)
        out[is_new] = new_idx
        reuse = ~is_new
        out[reuse] = new_idx[0] + (rng.random(int(reuse.sum())) * seen[reuse]).astype(np.int64)
        return out

    def finish(self, keep: np.ndarray) -> np.ndarray:
        """Draw the descriptive columns; return local index -> rank of the kept accounts by
        creation time (their ID order), -1 for accounts not kept."""
        rng = self.team.rng
        self.created = np.concatenate(self.T) if self.T else np.zeros(0, np.int64)
        self.seg = self.segment_of(np.arange(self.count))
        self.industry = rng.choice(len(INDUSTRIES), self.count, p=INDUSTRY_P)
        self.name = tuple(rng.integers(0, len(v), self.count) for v in (COMPANY_A, COMPANY_B, COMPANY_C))
        kept = np.flatnonzero(keep)
        self.perm = kept[np.argsort(self.created[kept], kind="stable")]
        rank = np.full(self.count, -1, dtype=np.int64)
        rank[self.perm] = np.arange(len(kept))
        return rank

    def columns(self, offset: int) -> dict:
        p = self.perm
        org = self.team.org
        return {
            "account_id": ("id", "account", offset + np.arange(len(p))),
            "name": ("name3", *(x[p] for x in self.name)),
            "segment": ("cat", self.seg[p], SEGMENTS),
            "industry": ("cat", self.industry[p], INDUSTRIES),
            "region": ("cat", np.full(len(p), org.team_region[self.team.t]), REGIONS),
            "created_at": ("ts", self.created[p]),
        }


_DEAL_COLS = ("owner", "T0", "acct", "dtype", "src", "stage0", "lead", "product", "annual", "months", "expected")


class _DealBook:
    """Deals of one team, added in batches and simulated batch by batch."""

    def __init__(self, team: _Team, acc: _AccountBook):
        self.team, self.acc = team, acc
        self.cols: dict[str, list] = {k: [] for k in _DEAL_COLS}
        self.count = 0
        self.pending = 0
        self.sims: list[tuple[int, _Sim]] = []
        self._arrays: dict[str, np.ndarray] = {}
        self._close: np.ndarray | None = None

    def _col(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = np.concatenate(self.cols[name]) if self.cols[name] else np.zeros(0, np.int64)
        return self._arrays[name]

    def add(self, *, owner, T0, acct, dtype, src, stage0, lead=None, product=None, annual=None, months=None, expected=None):
        team, rng = self.team, self.team.rng
        m = len(T0)
        if m == 0:
            return
        seg = self.acc.segment_of(acct)
        if product is None:
            product = rng.choice(len(PRODUCTS), m, p=PRODUCT_P)
        if annual is None:
            med = np.array([7_000.0, 30_000.0, 120_000.0])[seg]
            sigma = np.array([0.55, 0.5, 0.6])[seg]
            q4 = team.cal.quarter_of_year[np.minimum(T0 // DAY_S, team.cal.n - 1)] == 4
            noise = rng.normal(0, 1, m) * sigma + 0.06 * team.skill[owner]
            annual = med * PRODUCT_FACTOR[product] * np.exp(noise) * np.where(q4, 1.1, 1.0)
        if months is None:
            m_smb = rng.choice([6, 12, 24], m, p=[0.25, 0.65, 0.10])
            m_mid = rng.choice([12, 24, 36], m, p=[0.70, 0.20, 0.10])
            m_ent = rng.choice([12, 24, 36], m, p=[0.40, 0.30, 0.30])
            months = np.choose(seg, [m_smb, m_mid, m_ent])
        vals = {
            "owner": owner,
            "T0": T0,
            "acct": acct,
            "dtype": np.full(m, dtype),
            "src": src,
            "stage0": stage0,
            "lead": np.full(m, -1) if lead is None else lead,
            "product": product,
            "annual": annual,
            "months": months,
            "expected": np.full(m, np.datetime64("NaT", "D")) if expected is None else expected,
        }
        for k, v in vals.items():
            self.cols[k].append(np.asarray(v))
        self.count += m
        self._arrays = {}

    def simulate_pending(self) -> np.ndarray:
        idx = np.arange(self.pending, self.count)
        self.pending = self.count
        if len(idx) == 0:
            return idx
        team = self.team
        dt = self.dtype[idx]
        owner = self.owner[idx]
        seg = self.acc.segment_of(self.acct[idx])
        ramp_pen = np.where(team.ramp[owner, np.minimum(self.T0[idx] // DAY_S, team.cal.n - 1)] < 1.0, -0.4, 0.0)
        shift = 0.32 * team.skill[owner] + ramp_pen + np.where(dt == NB, SEG_LOGIT[seg], 0.0)
        sim = _simulate(team.rng, team.cal, dt, seg, self.stage0[idx], self.T0[idx], shift)
        self.sims.append((int(idx[0]), sim))
        self._close = None
        return idx

    def _all(self) -> np.ndarray:
        if self._close is None:
            ent_deal = np.concatenate([s.ent_deal + o for o, s in self.sims])
            self._ent = (
                ent_deal,
                np.concatenate([s.ent_stage for _, s in self.sims]),
                np.concatenate([s.ent_T for _, s in self.sims]),
                np.concatenate([s.ent_from for _, s in self.sims]),
            )
            self._outcome = np.concatenate([s.outcome for _, s in self.sims])
            self._pulled = np.concatenate([s.pulled for _, s in self.sims])
            last = np.r_[np.flatnonzero(np.diff(ent_deal)), len(ent_deal) - 1]
            self._close = self._ent[2][last]
        return self._close

    @property
    def close_T(self) -> np.ndarray:
        """Simulated time of the final (won or lost) entry of every deal."""
        return self._all()

    def outcome_T(self, idx: np.ndarray, outcome: int) -> np.ndarray:
        """Close time of deals whose simulated outcome is ``outcome`` (else a huge number)."""
        close = self._all()
        return np.where(self._outcome[idx] == outcome, close[idx], np.iinfo(np.int64).max)

    def finish(self) -> dict:
        """Cut the simulated histories at the snapshot and derive the deal columns."""
        team, cal, rng = self.team, self.team.cal, self.team.rng
        t_end = cal.t_end
        self._all()
        ent_deal, ent_stage, ent_T, ent_from = self._ent
        keep = ent_T <= t_end
        k_deal, k_stage, k_T, k_from = ent_deal[keep], ent_stage[keep], ent_T[keep], ent_from[keep]
        last = np.r_[np.flatnonzero(np.diff(k_deal)), len(k_deal) - 1]
        assert np.array_equal(k_deal[last], np.arange(self.count)), "every deal has a first stage entry"
        stage = k_stage[last]
        status = np.where(stage == WON, ST_WON, np.where(stage == LOST, ST_LOST, ST_OPEN))
        last_T = k_T[last]
        # owner: a deal still worked after its owner left goes to the successor
        work_until = np.where(status == ST_OPEN, t_end, last_T)
        owner = team.rep_at(self.owner, work_until)
        seg = self.acc.segment_of(self.acct)
        annual = self.annual * np.where(self._pulled & (status == ST_WON), 1 - rng.uniform(0.03, 0.12, self.count), 1.0)
        amount = np.round(annual * self.months / 12.0, 2)
        cost_lo = np.where(self.dtype == REN, 0.03, np.where(seg == ENT, 0.06, 0.10))
        cost = np.round(amount * rng.uniform(0, 1, self.count) * (np.where(seg == ENT, 0.14, 0.20)) + amount * cost_lo, 2)
        # close date: actual when closed; an (often optimistic, sometimes stale) estimate when open
        created_d = cal.date_of(self.T0)
        close_d = cal.date_of(last_T)
        cycle = np.array([30, 80, 160])[seg] * rng.uniform(0.7, 1.3, self.count)
        exp_d = created_d + cycle.astype("timedelta64[D]")
        exp_d = np.where(np.isnat(self.expected), exp_d, self.expected)
        end64 = np.datetime64(cal.end, "D")
        push = (exp_d < end64) & (rng.random(self.count) < 0.7)
        exp_d = np.where(push, end64 + _uniform_int(rng, 5, 75, self.count).astype("timedelta64[D]"), exp_d)
        month_end = (exp_d.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1
        exp_d = np.where(rng.random(self.count) < 0.35, month_end, exp_d)
        exp_d = np.maximum(exp_d, created_d)
        close_date = np.where(status == ST_OPEN, exp_d, close_d)
        # loss reason from the stage the deal was lost at (a few left empty)
        from_stage = np.clip(k_from[last], 0, NUR)
        probs = np.where((self.dtype == REN)[:, None], LOSS_RENEWAL[None, :], LOSS_BY_STAGE[from_stage])
        reason = _choice_rows(rng, probs)
        reason = np.where((status == ST_LOST) & (rng.random(self.count) >= 0.05), reason, -1)
        # kept: created in the window, or still open at its start; ID order = creation time
        keep = (self.T0 >= cal.t_start) | (status == ST_OPEN) | (last_T >= cal.t_start)
        kept = np.flatnonzero(keep)
        perm = kept[np.argsort(self.T0[kept], kind="stable")]
        rank = np.full(self.count, -1, dtype=np.int64)
        rank[perm] = np.arange(len(kept))
        self.final = {
            "owner": owner,
            "status": status,
            "stage": stage,
            "amount": amount,
            "cost": cost,
            "close_date": close_date,
            "close_T": np.where(status == ST_OPEN, -1, last_T),
            "reason": reason,
            "seg": seg,
            "perm": perm,
            "rank": rank,
            "keep": keep,
            "lead": self.lead,
            "k": (k_deal, k_stage, k_T),
        }
        return self.final

    def columns(self, D: dict, off: _Offsets, acc_rank: np.ndarray):
        p = D["perm"]
        g = self.team.g
        opp = {
            "opportunity_id": ("id", "opp", off.opp + np.arange(len(p))),
            "owner_id": ("id", "rep", g[D["owner"][p]]),
            "created_at": ("ts", self.T0[p]),
            "status": ("cat", D["status"][p], DEAL_STATUSES),
            "stage": ("cat", D["stage"][p], STAGE_NAMES),
            "amount": ("num", D["amount"][p]),
            "close_date": ("date", D["close_date"][p]),
            "account_id": ("id", "account", off.account + acc_rank[self.acct[p]]),
            "deal_type": ("cat", self.dtype[p], DEAL_TYPES),
            "product": ("cat", self.product[p], PRODUCTS),
            "lead_source": ("cat", self.src[p], LEAD_SOURCES),
            "cost": ("num", D["cost"][p]),
            "contract_months": ("num", self.months[p].astype(float)),
            "loss_reason": ("cat", D["reason"][p], LOSS),
            "currency": ("cat", np.zeros(len(p), np.int64), (CURRENCY,)),
        }
        k_deal, k_stage, k_T = D["k"]
        rank = D["rank"][k_deal]
        o = np.lexsort((k_T, rank))
        o = o[rank[o] >= 0]
        hist = {
            "opportunity_id": ("id", "opp", off.opp + rank[o]),
            "stage": ("cat", k_stage[o], STAGE_NAMES),
            "entered_at": ("ts", k_T[o]),
        }
        return opp, hist


for _name in _DEAL_COLS:
    setattr(_DealBook, _name, property(lambda self, _n=_name: self._col(_n)))


class _SubscriptionBook:
    def __init__(self):
        self.parts: list[tuple] = []
        self.count = 0

    def add(self, deals: _DealBook, deal_idx: np.ndarray, start: np.ndarray, prev: np.ndarray) -> np.ndarray:
        m = len(deal_idx)
        if m == 0:
            return np.zeros(0, np.int64)
        months = deals.months[deal_idx]
        end = _add_months(start, months) - np.timedelta64(1, "D")
        annual = np.round(deals.annual[deal_idx], 2)
        self.parts.append((deal_idx, start, end, annual, prev))
        idx = self.count + np.arange(m)
        self.count += m
        self._cat = None
        return idx

    def _get(self, i):
        if getattr(self, "_cat", None) is None:
            self._cat = [np.concatenate([p[j] for p in self.parts]) for j in range(5)] if self.parts else [np.zeros(0)] * 5
        return self._cat[i]

    deal = property(lambda self: self._get(0))
    start = property(lambda self: self._get(1))
    end = property(lambda self: self._get(2))
    annual = property(lambda self: self._get(3))
    prev = property(lambda self: self._get(4))

    def columns(self, off: _Offsets, acc_rank: np.ndarray, deals: _DealBook) -> dict:
        if self.count == 0:
            e = np.zeros(0, np.int64)
            return {
                "contract_id": ("id", "contract", e),
                "account_id": ("id", "account", e),
                "start_date": ("date", e.astype("datetime64[D]")),
                "end_date": ("date", e.astype("datetime64[D]")),
                "annual_value": ("num", e.astype(float)),
                "renewed_from": ("id", "contract", e),
            }
        # the annual value follows the (possibly discounted) won amount
        final_amount = deals.final["amount"][self.deal]
        annual = np.round(final_amount * 12.0 / deals.months[self.deal], 2)
        perm = np.lexsort((np.arange(self.count), self.start))
        rank = np.empty(self.count, dtype=np.int64)
        rank[perm] = np.arange(self.count)
        prev = self.prev[perm]
        return {
            "contract_id": ("id", "contract", off.contract + np.arange(self.count)),
            "account_id": ("id", "account", off.account + acc_rank[deals.acct[self.deal[perm]]]),
            "start_date": ("date", self.start[perm]),
            "end_date": ("date", self.end[perm]),
            "annual_value": ("num", annual[perm]),
            "renewed_from": ("id", "contract", np.where(prev >= 0, off.contract + rank[np.maximum(prev, 0)], -1)),
        }


# -- activities ---------------------------------------------------------------------------------------

#: activity rate per working day while a deal sits in a stage (Prospecting .. Nurture, won, lost)
DEAL_ACT_RATE = np.array([1.1, 0.9, 0.7, 0.8, 0.9, 0.7, 0.05, 0.0, 0.0])
SEG_ACT = np.array([1.3, 1.0, 0.8])
#: type mix by stage (call, email, meeting, demo, message, other) in ACT_TYPES order
_MIX = {
    PRO: {"call": 0.50, "email": 0.40, "message": 0.08, "other": 0.02},
    QUA: {"call": 0.40, "email": 0.48, "meeting": 0.07, "message": 0.05},
    RES: {"call": 0.28, "email": 0.57, "meeting": 0.10, "other": 0.05},
    DEM: {"call": 0.32, "email": 0.53, "meeting": 0.10, "message": 0.05},
    NEG: {"call": 0.32, "email": 0.51, "meeting": 0.12, "other": 0.05},
    CON: {"call": 0.30, "email": 0.65, "meeting": 0.05},
    NUR: {"email": 0.8, "call": 0.2},
}
FILLER_MIX = {
    SDR: {"call": 0.62, "email": 0.33, "message": 0.05},
    AE: {"call": 0.40, "email": 0.51, "message": 0.05, "meeting": 0.02, "other": 0.02},
    AM: {"call": 0.38, "email": 0.50, "meeting": 0.07, "other": 0.05},
    MGR: {"meeting": 0.55, "email": 0.25, "call": 0.15, "other": 0.05},
}
#: activities per working day each role logs in total
TARGET_PER_DAY = {SDR: 56.0, AE: 40.0, AM: 32.0, MGR: 6.0}
LEAD_MIX = {"call": 0.40, "email": 0.42, "message": 0.06, "meeting": 0.02}


def _mix_matrix(mixes: dict[int, dict[str, float]], size: int) -> np.ndarray:
    out = np.zeros((size, len(ACT_TYPES)))
    for k, mix in mixes.items():
        for typ, p in mix.items():
            out[k, ACT_TYPES.index(typ)] = p
    return out


STAGE_MIX = _mix_matrix(_MIX, 9)
ROLE_MIX = _mix_matrix(FILLER_MIX, len(ROLES))
LEAD_MIX_ROW = _mix_matrix({0: LEAD_MIX}, 1)[0]

# outbound call outcomes by context (cold prospecting, lead follow-up, deal): connected, no_answer,
# voicemail, positive, negative, meeting_booked
_CALL_OUT = np.array(
    [
        [0.20, 0.42, 0.22, 0.06, 0.06, 0.04],
        [0.30, 0.30, 0.15, 0.10, 0.07, 0.08],
        [0.42, 0.18, 0.10, 0.18, 0.06, 0.06],
    ]
)
_CALL_CODES = np.array([O_CONN, O_NOANS, O_VM, O_POS, O_NEG, O_BOOKED])
COLD, LEAD, DEAL = 0, 1, 2


class _ActivityRows:
    def __init__(self):
        self.parts: list[dict] = []

    def add(self, rep, typ, T, ctx, opp=None, lead=None, acct=None, outcome=None):
        m = len(T)
        if m == 0:
            return
        none = np.full(m, -1)
        self.parts.append(
            {
                "rep": np.asarray(rep),
                "typ": np.asarray(typ),
                "T": np.asarray(T, dtype=np.int64),
                "ctx": np.broadcast_to(np.asarray(ctx), (m,)).copy(),
                "opp": none if opp is None else np.asarray(opp),
                "lead": none if lead is None else np.asarray(lead),
                "acct": none if acct is None else np.asarray(acct),
                "outcome": none if outcome is None else np.broadcast_to(np.asarray(outcome), (m,)).copy(),
            }
        )

    def cat(self) -> dict:
        keys = ("rep", "typ", "T", "ctx", "opp", "lead", "acct", "outcome")
        if not self.parts:
            return {k: np.zeros(0, np.int64) for k in keys}
        return {k: np.concatenate([p[k] for p in self.parts]) for k in keys}


@dataclass
class _Activities:
    team: _Team
    rows: dict
    direction: np.ndarray
    outcome: np.ndarray
    duration: np.ndarray
    perm: np.ndarray

    @property
    def count(self) -> int:
        return len(self.perm)

    def columns(self, off: _Offsets, acc_rank: np.ndarray, opp_rank: np.ndarray, lead_rank: np.ndarray) -> dict:
        r, p = self.rows, self.perm
        opp, lead, acct = r["opp"][p], r["lead"][p], r["acct"][p]
        lead = np.where(lead >= 0, lead_rank[np.maximum(lead, 0)], -1)
        return {
            "activity_id": ("id", "act", off.act + np.arange(self.count)),
            "rep_id": ("id", "rep", self.team.g[r["rep"][p]]),
            "type": ("cat", r["typ"][p], ACT_TYPES),
            "occurred_at": ("ts", r["T"][p]),
            "duration_s": ("num", self.duration[p]),
            "direction": ("cat", self.direction[p], DIRECTIONS),
            "outcome": ("cat", self.outcome[p], OUTCOMES),
            "opportunity_id": ("id", "opp", np.where(opp >= 0, off.opp + opp_rank[np.maximum(opp, 0)], -1)),
            "lead_id": ("id", "lead", np.where(lead >= 0, off.lead + lead, -1)),
            "account_id": ("id", "account", np.where(acct >= 0, off.account + acc_rank[np.maximum(acct, 0)], -1)),
        }


def _activities(team: _Team, deals: _DealBook, D: dict, sdr_owner, resp_T, dec_T, converted, lead_acct, lead_keep) -> _Activities:
    rng, cal = team.rng, team.cal
    n, t_end, t_start = cal.n, cal.t_end, cal.t_start
    rows = _ActivityRows()

    # -- deal work: between consecutive stage entries (simulated, cut at the snapshot) --------
    ent_deal, ent_stage, ent_T, _ = deals._ent
    nxt_T = np.r_[ent_T[1:], np.iinfo(np.int64).max]
    same = np.r_[ent_deal[1:] == ent_deal[:-1], False]
    b = np.minimum(np.where(same, nxt_T, np.iinfo(np.int64).max), t_end)
    a = np.maximum(ent_T, t_start)
    ok = b > a
    dd, ds, da, db = ent_deal[ok], ent_stage[ok], a[ok], b[ok]
    won_mult = np.where(deals._outcome[dd] == WON, 1.35, 1.0)
    lam = DEAL_ACT_RATE[ds] * SEG_ACT[D["seg"][dd]] * won_mult * team.hustle[deals.owner[dd]] * (db - da) / DAY_S
    cnt = rng.poisson(np.minimum(lam, 200.0))
    iv = np.repeat(np.arange(len(dd)), cnt)
    T = da[iv] + (rng.random(len(iv)) * (db[iv] - da[iv])).astype(np.int64)
    deal = dd[iv]
    typ = _choice_rows(rng, STAGE_MIX[ds[iv]])
    rows.add(team.rep_at(deals.owner[deal], T), typ, T, DEAL, opp=deal, acct=deals.acct[deal])
    # events at stage entries: discovery meeting (Qualification), demo (Demo, some no-shows first),
    # negotiation meeting (Negotiation)
    ev = (ent_T <= t_end) & (ent_T >= t_start) & np.isin(ent_stage, [QUA, DEM, NEG])
    e_deal, e_stage, e_T = ent_deal[ev], ent_stage[ev], ent_T[ev] + _uniform_int(rng, 60, 1800, int(ev.sum()))
    e_T = np.minimum(np.minimum(e_T, t_end), nxt_T[ev] - 1)
    e_typ = np.where(e_stage == DEM, A_DEMO, A_MEETING)
    rows.add(team.rep_at(deals.owner[e_deal], e_T), e_typ, e_T, DEAL, opp=e_deal, acct=deals.acct[e_deal], outcome=O_DONE)
    prev_T = np.r_[np.int64(-1), ent_T[:-1]]
    first = np.r_[True, ent_deal[1:] != ent_deal[:-1]]
    ns = ev & (ent_stage == DEM) & (rng.random(len(ent_T)) < 0.12)
    ns_T = ent_T[ns] - _uniform_int(rng, DAY_S // 2, 3 * DAY_S, int(ns.sum()))
    ok = (ns_T > np.where(first[ns], deals.T0[ent_deal[ns]], prev_T[ns])) & (ns_T >= t_start)
    ns_deal, ns_T = ent_deal[ns][ok], ns_T[ok]
    rows.add(team.rep_at(deals.owner[ns_deal], ns_T), np.full(len(ns_T), A_DEMO), ns_T, DEAL, opp=ns_deal, acct=deals.acct[ns_deal], outcome=O_NOSHOW)

    # -- lead work: first touch = first response, follow-ups, booked meeting before conversion ---
    resp = np.flatnonzero((resp_T >= 0) & lead_keep)
    owner0 = sdr_owner  # SDR who received the lead
    ft_typ = np.where(rng.random(len(resp)) < 0.55, A_CALL, A_EMAIL)
    rows.add(team.rep_at(owner0[resp], resp_T[resp]), ft_typ, resp_T[resp], LEAD, lead=resp, acct=lead_acct[resp])
    stop = np.minimum(np.where(dec_T <= t_end, dec_T, t_end), t_end)
    span = np.maximum(stop - resp_T, 0)
    k = rng.poisson(np.where(converted, 4.0, 2.5)[resp] * team.hustle[owner0[resp]])
    iv = np.repeat(resp, k)
    T = resp_T[iv] + (rng.random(len(iv)) * span[iv]).astype(np.int64)
    typ = rng.choice(len(ACT_TYPES), len(iv), p=LEAD_MIX_ROW / LEAD_MIX_ROW.sum())
    rows.add(team.rep_at(owner0[iv], T), typ, T, LEAD, lead=iv, acct=lead_acct[iv])
    cv = np.flatnonzero(converted & lead_keep)
    bk_T = np.maximum(dec_T[cv] - _uniform_int(rng, DAY_S // 5, 2 * DAY_S, len(cv)), resp_T[cv])
    rows.add(team.rep_at(owner0[cv], bk_T), np.full(len(cv), A_CALL), bk_T, LEAD, lead=cv, acct=lead_acct[cv], outcome=O_BOOKED)
    rows.add(team.rep_at(owner0[cv], dec_T[cv]), np.full(len(cv), A_MEETING), dec_T[cv], LEAD, lead=cv, acct=lead_acct[cv], outcome=O_DONE)

    # -- prospecting and internal work up to each role's daily volume --------------------------
    linked = rows.cat()
    n_rep = len(team.g)
    done = np.bincount(linked["rep"], minlength=n_rep)
    window = np.arange(n) >= cal.w0
    active_days = np.maximum(team.active[:, window].sum(axis=1), 1)
    base = np.array([TARGET_PER_DAY[r] for r in team.role]) * team.hustle
    rate = np.maximum(base[:, None] * team.season_act[None, :] * team.ramp - (done / active_days)[:, None], 0.15 * base[:, None])
    r, d = _poisson_events(rng, rate * (team.active & window[None, :]))
    T = d * DAY_S + _tod(rng, len(d))
    typ = _choice_rows(rng, ROLE_MIX[team.role[r]])
    ctx = np.where(np.isin(team.role[r], [AM, MGR]), DEAL, COLD)
    rows.add(r, typ, T, ctx)

    R = rows.cat()
    m = len(R["T"])
    typ, ctx = R["typ"], R["ctx"]
    q = team.quality[R["rep"]]
    # direction
    p_in = np.select([typ == A_CALL, typ == A_EMAIL, typ == A_MESSAGE], [np.array([0.03, 0.06, 0.12])[ctx], np.array([0.08, 0.22, 0.35])[ctx], 0.2], 0.0)
    has_dir = np.isin(typ, [A_CALL, A_EMAIL, A_MESSAGE])
    inbound = rng.random(m) < p_in
    direction = np.where(has_dir, np.where(inbound, D_IN, D_OUT), -1)
    # outcomes
    probs = _CALL_OUT[ctx].copy()
    tilt = np.exp(0.35 * q)
    probs[:, 3] *= tilt
    probs[:, 5] *= tilt
    call_out = _CALL_CODES[_choice_rows(rng, probs)]
    call_in = np.where(rng.random(m) < 0.65, O_CONN, np.where(rng.random(m) < 0.7, O_POS, O_NEG))
    p_reply = np.array([0.07, 0.20, 0.35])[ctx] * np.exp(0.25 * q)
    replied = np.where(rng.random(m) < p_reply, O_REPLIED, -1)
    show = np.where(rng.random(m) < 0.9, O_DONE, O_NOSHOW)
    outcome = np.select(
        [
            (typ == A_CALL) & inbound,
            typ == A_CALL,
            (typ == A_EMAIL) & ~inbound,
            (typ == A_MESSAGE) & ~inbound,
            np.isin(typ, [A_MEETING, A_DEMO]),
        ],
        [call_in, call_out, replied, np.where(rng.random(m) < 0.15, O_REPLIED, -1), show],
        -1,
    )
    outcome = np.where(R["outcome"] >= 0, R["outcome"], outcome)
    # durations (seconds)
    talk = np.clip(330.0 * np.exp(rng.normal(0, 0.7, m)), 30, 3600) * np.where(np.isin(outcome, [O_POS, O_BOOKED]), 1.4, 1.0)
    dur = np.select(
        [
            (typ == A_CALL) & (outcome == O_NOANS),
            (typ == A_CALL) & (outcome == O_VM),
            typ == A_CALL,
            (typ == A_MEETING) & (outcome == O_DONE),
            (typ == A_DEMO) & (outcome == O_DONE),
        ],
        [
            rng.integers(0, 26, m).astype(float),
            rng.integers(20, 76, m).astype(float),
            talk,
            rng.choice([1800.0, 2700.0, 3600.0], m, p=[0.5, 0.2, 0.3]),
            rng.choice([2700.0, 3600.0, 4500.0], m, p=[0.3, 0.5, 0.2]),
        ],
        np.nan,
    )
    dur = np.round(dur)
    perm = np.lexsort((np.arange(m), R["rep"], R["T"]))
    return _Activities(team, R, direction, outcome, dur, perm)


# -- quotas and pulse ---------------------------------------------------------------------------------


def _quarters(cal: _Calendar) -> list[tuple[date, date]]:
    out = []
    y, q = cal.start.year, (cal.start.month - 1) // 3
    while True:
        qs = date(y, 3 * q + 1, 1)
        qe = date(y + (q == 3), 1 if q == 3 else 3 * q + 4, 1) - timedelta(days=1)
        if qe > cal.end:
            break
        if qs >= cal.start:
            out.append((qs, qe))
        y, q = (y + 1, 0) if q == 3 else (y, q + 1)
    return out


def _nice(x: np.ndarray, step: float) -> np.ndarray:
    return np.round(x / step) * step


def _quotas(team: _Team, deals: _DealBook, D: dict, A: _Activities) -> dict:
    cal, org = team.cal, team.org
    quarters = _quarters(cal)
    owners, starts, ends, metrics, targets = [], [], [], [], []
    if not quarters:
        return _quota_cols(owners, starts, ends, metrics, targets)
    qs = np.array([q[0] for q in quarters], dtype="datetime64[D]")
    qe = np.array([q[1] for q in quarters], dtype="datetime64[D]")
    w0 = cal.first_day_on_or_after(qs)
    w1 = cal.last_day_on_or_before(qe)
    cum = np.concatenate([np.zeros((len(team.g), 1)), np.cumsum(team.active, axis=1)], axis=1)
    frac = (cum[:, w1 + 1] - cum[:, w0]) / (w1 - w0 + 1)  # share of each quarter each rep worked
    hire = org.hire[team.g]
    ramping = (hire[:, None] > qs[None, :] - np.timedelta64(60, "D"))
    factor = frac * np.where(ramping, 0.5, 1.0)

    def per_quarter(rep, when, weight=None):
        qi = np.searchsorted(qe, when, side="left")
        ok = (qi < len(qe)) & (when >= qs[np.minimum(qi, len(qs) - 1)])
        out = np.zeros((len(team.g), len(qe)))
        np.add.at(out, (rep[ok], qi[ok]), 1.0 if weight is None else weight[ok])
        return out

    won = D["status"] == ST_WON
    rev = per_quarter(D["owner"][won], D["close_date"][won], D["amount"][won])
    cnt = per_quarter(D["owner"][won], D["close_date"][won])
    R = A.rows
    day = cal.date_of(R["T"])
    calls = per_quarter(R["rep"][R["typ"] == A_CALL], day[R["typ"] == A_CALL])
    meets = per_quarter(R["rep"][R["typ"] == A_MEETING], day[R["typ"] == A_MEETING])
    team_rev = np.zeros(len(quarters))
    for role, plan in ((AE, ((rev, "revenue", 1000.0), (cnt, "deals_won", 1.0))), (AM, ((rev, "revenue", 1000.0), (cnt, "deals_won", 1.0))), (SDR, ((calls, "calls", 50.0), (meets, "meetings", 1.0)))):
        members = np.flatnonzero(team.role == role)
        if len(members) == 0:
            continue
        fsum = factor[members].sum()
        for actual, metric, step in plan:
            per_full = actual[members].sum() / fsum if fsum > 0 else 0.0
            for i in members:
                for j in range(len(quarters)):
                    if frac[i, j] < 0.15:
                        continue
                    target = max(step, float(_nice(np.array(per_full * 1.1 * factor[i, j]), step)))
                    owners.append(_rep_id(org, team.g[i]))
                    starts.append(qs[j])
                    ends.append(qe[j])
                    metrics.append(metric)
                    targets.append(target)
                    if metric == "revenue":
                        team_rev[j] += target
    for j in range(len(quarters)):
        if team_rev[j] > 0:
            owners.append(org.team_names[team.t])
            starts.append(qs[j])
            ends.append(qe[j])
            metrics.append("revenue")
            targets.append(float(team_rev[j]))
    return _quota_cols(owners, starts, ends, metrics, targets)


def _rep_id(org: _Org, g: int) -> str:
    return f"{ID_PREFIX['rep']}{g + 1:0{org.widths['rep']}d}"


def _quota_cols(owners, starts, ends, metrics, targets) -> dict:
    return {
        "owner": ("str", np.array(owners, dtype=object)),
        "period_start": ("date", np.array(starts, dtype="datetime64[D]")),
        "period_end": ("date", np.array(ends, dtype="datetime64[D]")),
        "metric": ("str", np.array(metrics, dtype=object)),
        "target": ("num", np.array(targets, dtype=float)),
    }


def _pulse(team: _Team) -> dict:
    rng, cal, org = team.rng, team.cal, team.org
    n = cal.n
    months = cal.days[cal.w0 : n].astype("datetime64[M]")
    first_wd = cal.w0 + np.flatnonzero(np.r_[True, months[1:] != months[:-1]])
    survey = np.minimum(first_wd + 4, n - 1)
    reps = np.repeat(np.arange(len(team.g)), len(survey))
    day = np.tile(survey, len(team.g)) + _uniform_int(rng, 0, 5, len(reps))
    day = np.minimum(day, n - 1)
    answer = team.active[reps, day] & (rng.random(len(reps)) < 0.72)
    reps, day = reps[answer], day[answer]
    T = np.minimum(day * DAY_S + _tod(rng, len(day)), team.end_T[reps])
    leave = org.leave[team.g][reps]
    leaving = ~np.isnat(leave) & ((leave - cal.days[day]).astype("timedelta64[D]").astype(np.int64) < 120)
    score = 7.3 + 0.7 * org.morale[team.g][reps] + rng.normal(0, 1.5, len(reps)) - np.where(leaving, 2.8, 0.0)
    score = np.clip(np.round(score), 0, 10)
    anonymous = rng.random(len(reps)) < 0.3
    return {
        "answered_at": ("ts", T),
        "score": ("num", score),
        "rep_id": ("id", "rep", np.where(anonymous, -1, team.g[reps])),
        "team": ("cat", np.full(len(reps), team.t), tuple(org.team_names)),
    }


# -- driving the generation -----------------------------------------------------------------------------


def _check_args(reps: int, months: int, seed: int, end) -> date:
    if not isinstance(reps, (int, np.integer)) or reps < 4:
        raise ValueError(f"reps must be an integer of at least 4 (a manager, an SDR, an AE and an AM), got {reps!r}")
    if not isinstance(months, (int, np.integer)) or months < 1:
        raise ValueError(f"months must be a positive integer, got {months!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if end is None:
        return default_end()
    if isinstance(end, str):
        try:
            return date.fromisoformat(end)
        except ValueError:
            raise ValueError(f"end must be a date such as 2026-09-30, got {end!r}") from None
    if hasattr(end, "date") and callable(end.date):  # datetime / Timestamp
        return end.date()
    if isinstance(end, date):
        return end
    raise ValueError(f"end must be a datetime.date, got {end!r}")


def _generate(reps: int, months: int, seed: int, end: date, progress: bool = False) -> Iterator[dict[str, pa.Table]]:
    """Yield the tables chunk by chunk (global tables with the first chunk)."""
    org = _build_org(reps, months, seed, end)
    off = _Offsets()
    n_teams = len(org.team_members)
    t0 = time.perf_counter()
    first = True
    for c0 in range(0, n_teams, CHUNK_TEAMS):
        parts: dict[str, list] = {}
        for t in range(c0, min(c0 + CHUNK_TEAMS, n_teams)):
            out, counts = _Team(org, t).generate(off)
            for k, v in out.items():
                parts.setdefault(k, []).append(v)
            off.account += counts["account"]
            off.lead += counts["lead"]
            off.opp += counts["opp"]
            off.act += counts["act"]
            off.contract += counts["contract"]
        chunk = {}
        if first:
            chunk["reps"] = _to_arrow("reps", _reps_table(org), org)
        for name in ("accounts", "leads", "opportunities", "stage_history", "activities", "quotas", "subscriptions", "pulse"):
            chunk[name] = _to_arrow(name, _concat_parts(parts[name]), org)
        if first:
            chunk["spend"] = _to_arrow("spend", _spend_table(org), org)
            first = False
        if progress:
            done = min(c0 + CHUNK_TEAMS, n_teams)
            print(
                f"sample: teams {done}/{n_teams}, {off.opp:,} opportunities, {off.act:,} activities, "
                f"{time.perf_counter() - t0:.1f}s",
                file=sys.stderr,
                flush=True,
            )
        yield chunk


# -- public API -------------------------------------------------------------------------------------------


def sample_config(*, end: date | None = None, months: int = 24) -> dict:
    """The ``workbench.yml`` content of a sample dataset, as a mapping (valid for ``parse_config``).

    Stage names are CRM-style and mapped to the seven canonical steps (``schema.STEPS`` order);
    ``Closed Won`` / ``Closed Lost`` are statuses, not listed. Holidays are the company holidays
    the generator avoided, from the window start to the end of the following year. The scorecard
    benchmarks are per rep and month (about a typical AE's month in the default sample).
    """
    end = _check_args(4, months, 0, end)
    cal = _make_calendar(_window_start(end, months), end)
    return {
        "name": "Synthetic sample sales organisation",
        "timezone": TIMEZONE,
        "currency": CURRENCY,
        "fiscal_year_start_month": 1,
        "as_of": end,
        "working_days": ["mon", "tue", "wed", "thu", "fri"],
        "holidays": list(cal.holidays),
        "stages": [
            {"name": name, "step": step, "probability": prob}
            for name, step, prob in zip(STAGE_NAMES[:7], STEPS, STAGE_PROBABILITY)
        ],
        "scorecard": {
            "weights": dict(Scorecard().weights),
            # per rep and month, about a typical AE's month in the sample
            "benchmarks": {
                "opportunities_created": 30.0,
                "deals_won": 6.0,
                "calls": 330.0,
                "emails": 450.0,
                "meetings": 90.0,
                "demos": 20.0,
            },
        },
        # changes to evaluate in the reviews (nothing was planted: the verdicts should say so)
        "experiments": [
            {"name": "New discovery script", "metric": "win_rate",
             "change_date": _first_of_month(end, back=5), "window_days": 90},
            {"name": "Call opener training", "metric": "positive_call_rate",
             "change_date": _first_of_month(end, back=3), "window_days": 60},
        ],
    }


def _first_of_month(end: date, *, back: int) -> date:
    """The first day of the month ``back`` months before ``end``'s month."""
    y, m = divmod(end.year * 12 + end.month - 1 - back, 12)
    return date(y, m + 1, 1)


def sample_tables(*, reps: int = 40, months: int = 24, seed: int = 7, end: date | None = None) -> dict[str, pd.DataFrame]:
    """Build the synthetic dataset in memory: one DataFrame per table of :data:`SAMPLE_TABLES`.

    Parameters
    ----------
    reps : total rows of the reps table (teams of about eight; at least 4).
    months : whole calendar months covered, ending with the month of ``end``.
    seed : random seed; the same arguments always give the same frames.
    end : last day covered (default: the last day of the last full calendar quarter before today).

    Returns
    -------
    dict of DataFrames whose columns are ``TABLES[name].column_names`` in that order. IDs and text
    are strings, timestamps naive local wall times (``datetime64[us]``), dates ``datetime64[us]``
    at midnight, money and numbers float64; missing values are NaN / NaT.
    """
    end = _check_args(reps, months, seed, end)
    parts: dict[str, list[pa.Table]] = {}
    for chunk in _generate(reps, months, seed, end):
        for name, table in chunk.items():
            parts.setdefault(name, []).append(table)
    out = {}
    for name in SAMPLE_TABLES:
        table = pa.concat_tables(parts[name])
        df = table.to_pandas(date_as_object=False)
        for c in TABLES[name].columns:
            if c.type in ("date", "timestamp"):
                df[c.name] = df[c.name].astype(f"datetime64[{TS_UNIT}]")
        out[name] = df
    return out


def _formats(format: str) -> dict[str, str]:
    if format in ("csv", "parquet"):
        return {name: format for name in SAMPLE_TABLES}
    if format == "mixed":
        return {name: "parquet" if name in MIXED_PARQUET_TABLES else "csv" for name in SAMPLE_TABLES}
    raise ValueError(f"format must be 'csv', 'parquet' or 'mixed' (Parquet for {', '.join(MIXED_PARQUET_TABLES)}, CSV for the rest), got {format!r}")


def _csv_ready(table: pa.Table) -> pa.Table:
    """Timestamps as YYYY-MM-DDTHH:MM:SS, dates as YYYY-MM-DD, everything else as is."""
    cols = []
    for field, col in zip(table.schema, table.columns):
        if pa.types.is_timestamp(field.type):
            col = pc.strftime(col.cast(pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S")
        elif pa.types.is_date(field.type):
            col = col.cast(pa.string())
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.schema.names)


class _Writer:
    def __init__(self, name: str, path: Path, fmt: str):
        self.name, self.path, self.fmt = name, path, fmt
        self.tmp = path.with_name(path.name + ".tmp")
        self._w = None
        self._f = None

    def write(self, table: pa.Table) -> None:
        if self.fmt == "parquet":
            if self._w is None:
                # delta encodings for the sequential key and the timestamps: ~20 % smaller files
                # (readable by pyarrow, DuckDB, Spark)
                key = TABLES[self.name].key
                delta = {f.name: "DELTA_BINARY_PACKED" for f in table.schema if pa.types.is_timestamp(f.type)}
                if key:
                    delta[key] = "DELTA_BYTE_ARRAY"
                self._w = pq.ParquetWriter(
                    self.tmp,
                    table.schema,
                    compression="zstd",
                    compression_level=9,
                    use_dictionary=[c for c in table.schema.names if c not in delta],
                    column_encoding=delta,
                )
            self._w.write_table(table, row_group_size=1 << 20)
        else:
            table = _csv_ready(table)
            if self._f is None:
                self._f = open(self.tmp, "wb")
                self._f.write((",".join(table.schema.names) + "\n").encode())
                self._w = pacsv.CSVWriter(
                    self._f, table.schema, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none")
                )
            self._w.write_table(table)

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        if self._f is not None:
            self._f.close()
        os.replace(self.tmp, self.path)


def write_sample(
    out_dir: str | os.PathLike,
    *,
    reps: int = 40,
    months: int = 24,
    seed: int = 7,
    end: date | None = None,
    format: str = "csv",
    progress: bool = False,
) -> Path:
    """Write the synthetic dataset to ``out_dir`` and return the folder.

    One file per table (``<table>.csv`` or ``<table>.parquet``) plus ``workbench.yml``. ``format``
    is ``"csv"``, ``"parquet"`` or ``"mixed"`` (Parquet for the big activities and stage_history,
    CSV for the rest: how ``data/sample`` is stored). The data is generated and written in chunks
    of teams, so 5,000 reps fit in a few GB; files are byte-identical for the same arguments and
    hold exactly the frames of :func:`sample_tables`. Any other-format file of a sample table in
    ``out_dir`` is removed so the loader cannot pick up a stale copy; other files are left alone.
    Each file is written under a temporary name and moved into place when complete.
    """
    import yaml

    end = _check_args(reps, months, seed, end)
    formats = _formats(format)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writers = {name: _Writer(name, out / f"{name}.{fmt}", fmt) for name, fmt in formats.items()}
    try:
        for chunk in _generate(reps, months, seed, end, progress=progress):
            for name, table in chunk.items():
                writers[name].write(table)
    except BaseException:
        for w in writers.values():
            if w._w is not None:
                w._w.close()
            if w._f is not None:
                w._f.close()
            w.tmp.unlink(missing_ok=True)
        raise
    for name, w in writers.items():
        w.close()
        for suffix in (".csv", ".parquet"):
            other = out / f"{name}{suffix}"
            if suffix != f".{formats[name]}" and other.exists():
                other.unlink()
    config = sample_config(end=end, months=months)
    text = (
        "# Synthetic sample dataset generated by\n"
        f"# analysis.sample.write_sample(out_dir, reps={reps}, months={months}, seed={seed},"
        f" end=date({end.year}, {end.month}, {end.day}), format={format!r})\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    )
    (out / "workbench.yml").write_text(text, encoding="utf-8")
    return out
