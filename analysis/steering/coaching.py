"""Coaching flags: where a rep is significantly below the peers of the same role (SPEC section 7).

``coaching_flags(ds, "2026-Q3")`` returns one row per flag: the rep, the metric or pattern,
the rep's value against the peers', the evidence (numerator / denominator, test and p-value),
a suggested mentor (the peer strongest on exactly that metric) and a sentence a manager can
act on. ``coaching_tests`` returns every comparison that was made, flagged or not.

The rules
---------
Peers
    Reps of the same role (``reps.role``: SDR, AE, AM) employed at some time in the period.
    Managers are not compared. Each rep is compared with the *rest* of the peers (never with a
    pool that contains the rep).
Tenure
    A rep hired less than :data:`RAMP_DAYS` (90) days before the period starts is still ramping
    (fewer, weaker deals and less activity for reasons that are not a coaching matter): such a
    rep is neither tested nor part of the peers' pool nor a mentor. ``attrs["ramping"]`` maps
    them to their hire dates, and :func:`coaching_summary` says how many were left out (without
    naming them). A flagged rep who joined less than a year before the period ends gets
    "joined <date>" in the sentence. Without ``hire_date`` every rep is compared.
Like with like (indirect standardisation)
    Deal-level proportions depend on the mix: Enterprise deals are won less often than SMB
    deals, renewals more often than new business, calls to cold prospects book fewer meetings
    than calls to inbound leads. So each proportion is compared stratum by stratum
    (:data:`STRATA`): win rate by account segment x deal type x lead source, lead conversion by
    segment x lead source, meeting booked rate by the called account's segment (calls without
    an account are a stratum of their own). The peers' value is the *expected* one: the other
    peers' rate in each stratum applied to the rep's own deals (``expected`` successes, and
    ``peer_value = expected / denominator``), so a sentence reads "win rate 7% (9 of 127 closed
    deals) against 24% (30 of 127) expected for other AEs with the same mix". The test is the
    exact stratified test (:func:`stratified_fisher`): Fisher's exact test within each stratum,
    combined by convolving the hypergeometric distributions; it is exact, needs no large-sample
    approximation and reduces to Fisher's test with one stratum. Strata where the rest of the
    peers have no deals carry no comparison and are left out. A dimension the data lack (no
    accounts table, no ``deal_type``) is simply not used; when deals carry no segment at all and
    the teams' win rates differ (chi-square p < :data:`TEAM_HETEROGENEITY_P`), win rates are
    compared within the team instead.
What is compared (per role, see :data:`SPECS`)
    AE and AM: ``win_rate`` (deals won / closed in P), ``activities_per_day``, and the share of
    their open deals stalled at each funnel step at the end of P (within the team). SDR: ``calls_per_day``,
    ``meeting_booked_rate`` (calls that booked a meeting / calls) and ``lead_conversion_rate``.
    Deal size and cycle length are not compared: across one role they are driven by the
    team's segment (SMB against Enterprise), not by the rep.
Tests (one-sided: only "worse than peers" can flag)
    * Proportions (win rate, meeting booked rate, lead conversion): the stratified exact test
      above; stalled shares: the same test with the rep's team as the only stratum.
    * Rates per working day (calls, activities): the rep's rate against the *distribution* of
      the other peers' rates, a t test for one new observation:
      ``t = (x - mean) / (sd * sqrt(1 + 1/k))`` with ``k - 1`` degrees of freedom (k peers).
      Daily counts are over-dispersed between reps (some simply work more), so a Poisson
      test of the counts would call almost every rep "different"; this one asks whether the
      rep lies outside the spread of the peers.
Multiple comparisons
    Every test made in one call (all reps x all metrics, patterns included) is one family;
    the p-values are adjusted by Benjamini-Hochberg and a flag needs ``q <= config.coaching.alpha``
    (a false discovery rate of 1 % by default, see "Measured" below).
Effect size
    Significance is not enough: the rep must also be at least :data:`MIN_GAP` (25 %) worse than
    the peers in relative terms (a win rate of at most 75 % of the peers'); for the two
    volume-and-conversion patterns :data:`PATTERN_GAP` (20 %) is enough, since the top-quarter
    volume is a second signal; a stalled share must be at least :data:`STALL_GAP` (50 %) higher
    than the peers'.
Minimum sample
    Deal metrics need ``config.coaching.min_closed_deals`` closed deals (open deals at the step
    for stalling); activity and lead metrics ``config.coaching.min_activities`` calls or
    leads; rates per day :data:`MIN_WORKING_DAYS` working days. Smaller samples are never
    tested, and a comparison needs at least :data:`MIN_PEERS` other peers.
Patterns
    ``many_calls_few_meetings``: an SDR flagged on meeting booked rate whose calls per day are
    in the top quarter of the peers (at least their 75th percentile). ``many_meetings_low_win_rate``:
    an AE or AM flagged on win rate whose meetings and demos per week are in the top quarter.
    The pattern replaces the metric flag it rests on (same test, one row).
    ``stalling_at_<step>``: the share of the rep's open deals at that step that are stalled
    (:func:`analysis.funnel.stalled_deals`) at the end of P is significantly above that of the
    peers *of the same team* (Fisher's exact test within the team). The stall thresholds are
    company-wide, so a team with long cycles (Enterprise) "stalls" as a whole; compared with
    the whole role it named Enterprise AEs in three seeds out of four on synthetic data without
    any per-rep stalling. Within the team: no stall flag on the null and normal generated
    datasets (seeds 1-3, 2026-Q3 and 2026-H1), while 15 deals of one AE moved 120 days back at
    qualification are flagged (q < 0.001). ``stalling=False`` turns it off.
Mentor
    The peer of the same role, still employed at the end of the data, with enough sample,
    strongest on exactly that metric: proportions ranked by the 95 % Wilson bound (the lower
    bound for a rate where higher is better, the upper bound where lower is better), so that a
    2-of-3 rep never outranks a 40-of-80 rep -- for a stratified proportion the bound divided
    by the candidate's own expected rate, so a rep selling into easy segments does not win on
    mix alone; rates per day by value.
Measured (scratch study, generator of :mod:`analysis.sample`, 40 reps, 12 months, seeds 1-6,
periods 2026-Q3, 2026-H1 and 2026: 18 dataset-periods each)
    *Null world*: every latent skill, volume and quality factor neutral except one planted weak
    AE (skill -3) and one planted SDR with many calls and few meetings, so any other flag is
    false by construction. Before (pooled Fisher, no tenure rule, alpha 0.05): 22 false reps in
    13 of 18 dataset-periods (new hires, Enterprise AEs), weak AE found 16/18, pattern 17/18.
    Now: 0 false reps (the smallest q of any other comparison was 0.17), weak AE found 15/18
    (the misses are quarters with too few closed deals: q 0.06-0.30), pattern 17/18 (one quarter
    where the SDR was not tested). *Generated world* (latent skills ~ N(0, 1)): flags on reps
    whose relevant latent factor is above -0.5 SD fell from 25 to 9; flags on reps below -1 SD
    went from 64 to 35 (the rest are borderline, -1 to -0.5 SD). With the new tests alpha 0.05
    would give 11 and 43: alpha 0.01 keeps every planted detection that 0.05 makes and names
    fewer borderline reps, so it is the default (``config.coaching.alpha``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy import special, stats

from analysis.data.loading import Dataset
from analysis.data.periods import Period, parse_period
from analysis.data.schema import step_label
from analysis.data.timeline import employed
from analysis.errors import WorkbenchError
from analysis.semantic.engine import dimension_reachable, metrics, wilson_interval

#: Roles that are compared with their peers.
COACHED_ROLES = ("SDR", "AE", "AM")
#: Smallest relative gap worth a metric flag (0.25: at most 75 % of the peers' value).
MIN_GAP = 0.25
#: Smallest relative gap for a pattern flag (0.2), which also needs the rep's volume in the top
#: quarter of the peers: two signals, so a slightly smaller gap is enough.
PATTERN_GAP = 0.2
#: Smallest relative excess of stalled deals worth a flag (0.5: 1.5 times the peers' share).
STALL_GAP = 0.5
#: Other peers (with enough sample) needed for a comparison.
MIN_PEERS = 3
#: Working days a rep needs in the period before a rate per day is compared.
MIN_WORKING_DAYS = 10
#: Days after the hire date during which a rep is ramping: a rep hired less than this before the
#: period starts is not compared (neither tested nor part of the peers' pool), see the module notes.
RAMP_DAYS = 90
#: Closed deals owned in the year up to the period's end that make a rep without a role an AE.
INFER_AE_DEALS = 3
#: A flag's sentence says when the rep joined if that is less than this many days before the
#: period ends.
JOINED_NOTE_DAYS = 365
#: Team heterogeneity p-value below which win rates are compared within the team when deals
#: carry no segment (see the module notes).
TEAM_HETEROGENEITY_P = 0.001
#: Strata of the deal-level proportions: (table, dimensions, numerator, denominator). A rep's
#: rate is compared with what the other peers achieve on the same mix.
STRATA = {
    "win_rate": ("opportunities", ("segment", "deal_type", "lead_source"), "deals_won", "deals_closed"),
    "lead_conversion_rate": ("leads", ("segment", "lead_source"), "leads_converted", "leads_created"),
    "meeting_booked_rate": ("activities", ("segment",), "booked_calls", "calls"),
}
_DIM_WORDS = {"segment": "segment", "deal_type": "deal type", "lead_source": "lead source", "team": "team"}
#: Steps whose stalled deals are compared (nurturing is parking, not a stall).
STALL_STEPS = ("prospecting", "qualification", "research", "demo", "objection_handling", "closing")

STEP_LABELS = {s: step_label(s) for s in STALL_STEPS}

COLUMNS = [
    "rep_id", "name", "team", "role", "flag", "kind", "metric", "value", "peer_value", "gap",
    "numerator", "denominator", "peer_numerator", "peer_denominator", "value_low", "value_high",
    "test", "p_value", "q_value", "evidence", "mentor_rep_id", "mentor_name", "mentor_value", "sentence",
    "expected", "hire_date",
]  # fmt: skip


class CoachingError(WorkbenchError):
    """A coaching request that cannot be answered (unknown role)."""


@dataclass(frozen=True)
class Spec:
    """One compared metric: how it is measured, tested and talked about."""

    metric: str
    roles: tuple[str, ...]
    test: str  # "proportion" (Fisher exact) or "rate" (t against the peer distribution)
    sample: str  # "deals", "activities" or "days"
    unit: str  # what the denominator counts: "closed deals", "calls", "leads", "working days"
    label: str  # in a sentence: "win rate"
    topic: str  # what to work on with the mentor
    higher_is_better: bool = True


SPECS: tuple[Spec, ...] = (
    Spec("win_rate", ("AE", "AM"), "proportion", "deals", "closed deals", "win rate",
         "qualifying deals and closing them"),
    Spec("activities_per_day", ("AE", "AM"), "rate", "days", "working days", "activities per working day",
         "planning the week and protecting selling time"),
    Spec("calls_per_day", ("SDR",), "rate", "days", "working days", "calls per working day",
         "blocking time for call sessions"),
    Spec("meeting_booked_rate", ("SDR",), "proportion", "activities", "calls", "meeting booked rate",
         "call openings and asking for the meeting"),
    Spec("lead_conversion_rate", ("SDR",), "proportion", "activities", "leads", "lead conversion rate",
         "qualifying leads and following up"),
)  # fmt: skip

_NUM_DEN = {
    "win_rate": ("deals_won", "deals_closed"),
    "activities_per_day": ("activities", "rep_working_days"),
    "calls_per_day": ("calls", "rep_working_days"),
    "meeting_booked_rate": ("booked_calls", "calls"),
    "lead_conversion_rate": ("leads_converted", "leads_created"),
}
_TABLE = {
    "win_rate": "opportunities",
    "activities_per_day": "activities",
    "calls_per_day": "activities",
    "meeting_booked_rate": "activities",
    "lead_conversion_rate": "leads",
}

_PATTERN_OF = {"meeting_booked_rate": "many_calls_few_meetings", "win_rate": "many_meetings_low_win_rate"}


# -- public API ------------------------------------------------------------------------------


def coaching_flags(
    ds: Dataset,
    period: str | Period,
    *,
    role: str | None = None,
    alpha: float | None = None,
    min_gap: float = MIN_GAP,
    stalling: bool = True,
    name_mentors: bool = True,
) -> pd.DataFrame:
    """Reps significantly and materially below the peers of their role, with a mentor each.

    Parameters
    ----------
    ds
        A dataset with ``reps`` and ``opportunities`` (``activities``, ``leads`` and
        ``stage_history`` add metrics; without them those metrics are not compared).
    period
        The period label (``2026-Q3``, ``2026-H1``, ``2026``) or a :class:`Period`.
    role
        Only this role (SDR, AE or AM); default all three.
    alpha
        False discovery rate of the Benjamini-Hochberg procedure; default
        ``config.coaching.alpha``.
    min_gap
        Smallest relative gap worth a metric flag (default 0.25; patterns need
        :data:`PATTERN_GAP`).
    stalling
        Also compare stalled deals per step within the team (``stalling_at_<step>``); see the
        module notes.
    name_mentors
        Name the mentor in ``sentence`` (default). False describes them instead ("the peer
        strongest on ..."), for a rep's own review; ``mentor_rep_id`` is filled either way.

    Returns
    -------
    pandas.DataFrame
        One row per flag (see :data:`COLUMNS`): ``rep_id``, ``name``, ``team``, ``role``,
        ``flag`` (a metric id, ``many_calls_few_meetings``, ``many_meetings_low_win_rate`` or
        ``stalling_at_<step>``), ``kind`` (``metric`` or ``pattern``), ``metric`` (the metric
        tested), ``value``, ``peer_value`` (pooled rate, or mean rate per day, of the other
        peers), ``gap`` (relative: value / peer_value - 1), ``numerator``, ``denominator``,
        ``peer_numerator``, ``peer_denominator``, ``value_low`` / ``value_high`` (95 % Wilson
        interval of a proportion), ``test``, ``p_value`` (one-sided), ``q_value``
        (Benjamini-Hochberg), ``evidence``, ``mentor_rep_id``, ``mentor_name``,
        ``mentor_value``, ``sentence``. Sorted by role, q_value. ``attrs`` hold ``period``,
        ``tests`` (comparisons made), ``alpha`` and ``as_of``.

    Notes
    -----
    See the module docstring for the tests, the multiple-comparison control, the effect
    thresholds and the minimum samples. An empty frame (with these columns) means no rep is
    significantly below the peers.
    """
    tests = coaching_tests(ds, period, role=role, alpha=alpha, min_gap=min_gap, stalling=stalling,
                           name_mentors=name_mentors)
    flags = tests[tests["flagged"]].drop(columns=["flagged"]).reset_index(drop=True)
    flags = flags[COLUMNS]
    flags.attrs.update(tests.attrs)
    return flags


def coaching_tests(
    ds: Dataset,
    period: str | Period,
    *,
    role: str | None = None,
    alpha: float | None = None,
    min_gap: float = MIN_GAP,
    stalling: bool = True,
    name_mentors: bool = True,
) -> pd.DataFrame:
    """Every comparison behind :func:`coaching_flags`, flagged or not (column ``flagged``).

    Same parameters as :func:`coaching_flags`; mentors and sentences are filled for flagged
    rows only. Useful to see how close a rep came to a flag.
    """
    cfg = ds.config.coaching
    alpha = cfg.alpha if alpha is None else float(alpha)
    roles = _roles(role)
    p = period if isinstance(period, Period) else parse_period(period, fiscal_start_month=ds.config.fiscal_year_start_month)
    active = _active_reps(ds, p, roles)
    ramping = _ramping(active, p)
    reps = active[~active["rep_id"].isin(list(ramping))].reset_index(drop=True)
    as_of = min(p.last_day, ds.last_date())
    frames: list[pd.DataFrame] = []
    extra = {"period": p.label, "alpha": alpha, "as_of": str(as_of), "ramping": ramping}
    if not reps.empty:
        strata = _strata(ds, p, reps, roles)
        per_rep = _per_rep(ds, p, reps, strata)
        for spec in SPECS:
            for r in spec.roles:
                if r in roles and spec.metric in per_rep.columns:
                    frames.append(_compare(spec, r, per_rep[per_rep.role == r], cfg, strata=strata.get(spec.metric)))
        owners = [r for r in ("AE", "AM") if r in roles]
        if stalling and ds.has("stage_history") and owners:
            frames.extend(_stall_tests(ds, reps[reps.role.isin(owners)], as_of, cfg))
    frames = [f for f in frames if not f.empty]
    if not frames:
        out = pd.DataFrame({c: pd.Series(dtype="object") for c in [*COLUMNS, "flagged"]})
        out["flagged"] = out["flagged"].astype(bool)
        out.attrs.update(tests=0, **extra)
        return out
    out = pd.concat(frames, ignore_index=True)
    out["q_value"] = bh_adjust(out["p_value"].to_numpy(dtype=float))
    worse = np.where(out["x_higher"], -out["gap"], out["gap"]).astype(float)
    significant = (out["q_value"] <= alpha).to_numpy()
    stall = out["metric"].str.startswith("stalled_share").to_numpy()
    # candidates: significant with at least the pattern gap; patterns are recognised, then
    # plain metric flags must clear the full gap
    out["flagged"] = significant & (worse >= np.where(stall, STALL_GAP, min(min_gap, PATTERN_GAP)) - 1e-12)
    out = _patterns(out, per_rep if not reps.empty else None)
    out["flagged"] = out["flagged"] & ((out["kind"] == "pattern").to_numpy() | (worse >= min_gap - 1e-12))
    out = _mentors(out, reps, ds.last_date())
    hire = pd.to_datetime(reps.set_index("rep_id")["hire_date"], errors="coerce")
    hired = {r: None if pd.isna(h) else h.date().isoformat() for r, h in hire.items()}
    out["hire_date"] = [hired.get(r) for r in out["rep_id"]]
    # words for the flagged rows only (a few hundred of ~13,000 tests at 5,000 reps)
    evidence = np.full(len(out), "", dtype=object)
    sentence = np.full(len(out), "", dtype=object)
    for j, r in zip(np.flatnonzero(out["flagged"].to_numpy(bool)), out[out["flagged"].to_numpy(bool)].itertuples()):
        evidence[j] = _evidence(r, len(out))
        sentence[j] = _sentence(r, p, name_mentor=name_mentors)
    out["evidence"] = list(evidence)
    out["sentence"] = list(sentence)
    out = out.sort_values(["flagged", "role", "q_value", "rep_id"], ascending=[False, True, True, True], kind="stable")
    out = out[[*COLUMNS, "flagged"]].reset_index(drop=True)
    for c in ("value", "peer_value", "gap", "numerator", "denominator", "peer_numerator", "peer_denominator",
              "value_low", "value_high", "p_value", "q_value", "mentor_value", "expected"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Float64")
    out.attrs.update(tests=int(len(out)), **extra)
    return out


def coaching_summary(flags: pd.DataFrame) -> str:
    """One sentence for the review: how many reps were flagged, on what, out of how many tests.

    >>> coaching_summary(flags)  # doctest: +SKIP
    '2 reps need coaching in 2026-H1: Nadia Chen (win rate), Rafael Sanchez (many calls, few meetings).'
    """
    period = flags.attrs.get("period", "the period")
    tests = flags.attrs.get("tests")
    alpha = flags.attrs.get("alpha", 0.05)
    n_ramp = len(flags.attrs.get("ramping") or {})
    ramp = ""
    if n_ramp:
        ramp = (f" {n_ramp} {'rep' if n_ramp == 1 else 'reps'} hired less than {RAMP_DAYS} days before the period "
                f"{'was' if n_ramp == 1 else 'were'} still ramping and not compared.")
    if flags.empty:
        among = f" ({tests} comparisons, {alpha:.0%} false discovery rate)" if tests else ""
        return f"No rep is significantly below the peers of their role in {period}{among}." + ramp
    parts = []
    for rep_id, g in flags.groupby("rep_id", sort=False):
        what = ", ".join(dict.fromkeys(_flag_label(f) for f in g["flag"]))
        parts.append(f"{g['name'].iloc[0]} ({what})")
    n = len(parts)
    who = "1 rep needs" if n == 1 else f"{n} reps need"
    return f"{who} coaching in {period}: {'; '.join(parts)}." + ramp


def bh_adjust(p_values: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN and is not counted.

    Notes
    -----
    With the m p-values sorted, q_(i) = min over j >= i of p_(j) * m / j, capped at 1. A test is
    significant at false discovery rate alpha when its q <= alpha.
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    res = np.empty(m)
    res[order] = np.minimum(ranked, 1.0)
    q[ok] = res
    return q


def fisher_less(k: Any, n: Any, k_rest: Any, n_rest: Any) -> np.ndarray:
    """One-sided Fisher exact p-value that the rep's rate k/n is below the rest's k_rest/n_rest.

    Notes
    -----
    P(X <= k) for X hypergeometric: n draws from n + n_rest items of which k + k_rest are
    successes; equal to ``scipy.stats.fisher_exact([[k, n - k], [k_rest, n_rest - k_rest]],
    alternative="less")``.
    """
    k, n, kr, nr = (np.asarray(x, dtype=float) for x in (k, n, k_rest, n_rest))
    return stats.hypergeom.cdf(k, n + nr, k + kr, n)


def fisher_greater(k: Any, n: Any, k_rest: Any, n_rest: Any) -> np.ndarray:
    """One-sided Fisher exact p-value that the rep's rate k/n is above the rest's."""
    k, n, kr, nr = (np.asarray(x, dtype=float) for x in (k, n, k_rest, n_rest))
    return stats.hypergeom.sf(k - 1, n + nr, k + kr, n)


def stratified_fisher(k: Any, n: Any, k_rest: Any, n_rest: Any, *, lower: bool = True) -> float:
    """One-sided exact p-value of the rep's successes against the rest's, stratum by stratum.

    Notes
    -----
    Arrays have one entry per stratum (segment x deal type, say). Under the null hypothesis the
    rep and the rest have the same rate *within* each stratum (rates may differ between strata),
    and, given each stratum's totals, the rep's successes in stratum s are hypergeometric
    (``n_s`` draws from ``n_s + n_rest_s`` deals of which ``k_s + k_rest_s`` are successes) --
    Fisher's exact test within the stratum. The rep's total ``sum(k_s)`` then follows the
    convolution of those hypergeometric distributions (the exact conditional test of a common
    odds ratio of 1 that underlies the Cochran-Mantel-Haenszel test); the p-value is its lower
    tail ``P(K <= sum k_s)`` (upper tail with ``lower=False``). With one stratum it is exactly
    :func:`fisher_less` / :func:`fisher_greater`. Computed exactly (no normal approximation):
    a few thousand trials per stratum take milliseconds.
    """
    return _stratified_fisher_many([(k, n, k_rest, n_rest)], lower=lower)[0]


def _stratified_fisher_many(cases: list[tuple[Any, Any, Any, Any]], *, lower: bool = True) -> list[float]:
    """:func:`stratified_fisher` of many ``(k, n, k_rest, n_rest)`` cases (one per rep), with
    the hypergeometric pmfs of every stratum of every case in one vectorised call: element by
    element the same arithmetic as one stratum at a time, and each case's pmfs are convolved in
    its strata order, so each p-value is exactly the one-case one."""
    prepared = []
    for case in cases:
        k, n, kr, nr = (np.atleast_1d(np.asarray(x, dtype=float)) for x in case)
        use = n > 0
        ns, total, succ = n[use], n[use] + nr[use], k[use] + kr[use]
        los = [int(v) for v in np.maximum(0, ns - (total - succ))]
        his = [int(v) for v in np.minimum(ns, succ)]
        prepared.append((k, n, ns, total, succ, los, his))
    sizes = np.array([h - lo + 1 for *_, los, his in prepared for lo, h in zip(los, his)], dtype=np.int64)
    parts: list[np.ndarray] = []
    if len(sizes):
        x = np.concatenate([np.arange(lo, h + 1) for *_, los, his in prepared for lo, h in zip(los, his)])
        total, succ, ns = (np.repeat(np.concatenate([c[i] for c in prepared]), sizes) for i in (3, 4, 2))
        parts = np.split(_hypergeom_pmf(x, total, succ, ns), np.cumsum(sizes)[:-1])
    out = []
    at = 0
    for k, n, _, _, _, los, _ in prepared:
        pmf = np.ones(1)
        lo_total = 0
        for lo, part in zip(los, parts[at:at + len(los)]):
            if not (len(part) == 1 and part[0] == 1.0):  # convolving with [1.0] changes nothing
                pmf = np.convolve(pmf, part)
            lo_total += lo
        at += len(los)
        observed = int(round(k[n > 0].sum())) - lo_total
        if lower:
            p = pmf[: observed + 1].sum()
        else:
            p = pmf[max(observed, 0):].sum()
        out.append(float(min(max(p, 0.0), 1.0)))
    return out


def _hypergeom_pmf(x: np.ndarray, total: float, succ: float, draws: float) -> np.ndarray:
    """Hypergeometric pmf through log-gamma (as scipy's, but much faster for one support)."""
    lg = special.gammaln
    logc = lambda a, b: lg(a + 1) - lg(b + 1) - lg(a - b + 1)  # noqa: E731
    return np.exp(logc(succ, x) + logc(total - succ, draws - x) - logc(total, draws))


def expected_successes(n: Any, k_rest: Any, n_rest: Any) -> float:
    """Indirect standardisation: the successes the rep would have at the rest's rate in each
    stratum, ``sum(n_s * k_rest_s / n_rest_s)`` over strata where the rest has trials."""
    n, kr, nr = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (n, k_rest, n_rest))
    ok = nr > 0
    return float((n[ok] * kr[ok] / nr[ok]).sum())


def peer_t_test(x: float, others: Any, *, higher_is_better: bool = True) -> tuple[float, float]:
    """t statistic and one-sided p-value of one rep's rate against the other peers' rates.

    Notes
    -----
    ``t = (x - mean) / (sd * sqrt(1 + 1/k))`` over the k other peers (sample sd), Student's t
    with k - 1 degrees of freedom: the prediction test of whether x could come from the peers'
    distribution. p = P(T <= t) when higher is better (P(T >= t) otherwise). NaN with fewer than
    2 peers; when every peer has the same rate, p is 0 or 1.
    """
    o = np.asarray(others, dtype=float)
    o = o[~np.isnan(o)]
    k = len(o)
    if k < 2 or np.isnan(x):
        return float("nan"), float("nan")
    mean, sd = o.mean(), o.std(ddof=1)
    if sd == 0:
        t = -np.inf if x < mean else (np.inf if x > mean else 0.0)
    else:
        t = (x - mean) / (sd * np.sqrt(1 + 1 / k))
    p = stats.t.cdf(t, k - 1) if higher_is_better else stats.t.sf(t, k - 1)
    return float(t), float(p)


# -- the data --------------------------------------------------------------------------------


def _roles(role: str | None) -> tuple[str, ...]:
    if role is None:
        return COACHED_ROLES
    for r in COACHED_ROLES:
        if str(role).strip().lower() == r.lower():
            return (r,)
    if str(role).strip().lower() == "manager":
        return ()
    raise CoachingError(f"unknown role {role!r}; use one of {', '.join(COACHED_ROLES)} (managers are not compared)")


def _active_reps(ds: Dataset, p: Period, roles: tuple[str, ...]) -> pd.DataFrame:
    """Reps of the roles employed at some time in the period (hire before its end, no end
    before its start)."""
    cols = [c for c in ("rep_id", "name", "team", "role", "hire_date", "end_date") if ds.has_column("reps", c) or c in ("rep_id", "name")]
    reps = ds.table("reps").select(*cols).to_pandas()
    for c in ("team", "role", "hire_date", "end_date"):
        if c not in reps.columns:
            reps[c] = pd.NA
    reps["rep_id"] = reps["rep_id"].astype("string")
    missing = reps["role"].isna()
    if missing.any():  # no role given: read it from what the rep does (see _infer_roles)
        guessed = _infer_roles(ds, p, reps.loc[missing, "rep_id"])
        reps["role"] = reps["role"].astype("object")
        reps.loc[missing, "role"] = reps.loc[missing, "rep_id"].map(guessed)
    reps = reps[reps["role"].isin(roles)]
    return reps[employed(reps, p)].reset_index(drop=True)


def _infer_roles(ds: Dataset, p: Period, rep_ids: pd.Series) -> dict[str, str]:
    """A role for reps whose ``reps.role`` is empty, from their work in the year up to P's end.

    A rep who owns at least :data:`INFER_AE_DEALS` closed deals is compared with the AEs; one
    who owns no closed deal but made calls or owns leads, with the SDRs; anyone else is not
    compared. Without this, a CRM export without roles would compare nobody.
    """
    start, end = ibis.literal(p.end - timedelta(days=365)), ibis.literal(p.end)
    ids = [str(x) for x in rep_ids]
    o = ds.table("opportunities")
    closed = o.filter(o.status.isin(["won", "lost"]) & o.owner_id.isin(ids) & (o.close_date.cast("date") >= start)
                      & (o.close_date.cast("date") < end))
    deals = closed.group_by(rep_id=closed.owner_id).aggregate(n=closed.count()).to_pandas()
    owners = set(deals.loc[deals.n >= INFER_AE_DEALS, "rep_id"].astype(str))
    workers: set[str] = set()
    if ds.has("activities"):
        a = ds.table("activities")
        calls = a.filter((a.type == "call") & a.rep_id.isin(ids) & (a.occurred_at.date() >= start)
                         & (a.occurred_at.date() < end))
        workers |= set(calls.select("rep_id").distinct().to_pandas().rep_id.astype(str))
    if ds.has("leads") and ds.has_column("leads", "owner_id"):
        ld = ds.table("leads")
        mine = ld.filter(ld.owner_id.isin(ids) & (ld.created_at.date() >= start) & (ld.created_at.date() < end))
        workers |= set(mine.select("owner_id").distinct().to_pandas().owner_id.astype(str))
    return {r: "AE" if r in owners else "SDR" for r in ids if r in owners or r in workers}


def _ramping(reps: pd.DataFrame, p: Period) -> dict[str, str]:
    """Reps hired less than :data:`RAMP_DAYS` before the period starts: rep_id -> hire date."""
    hire = pd.to_datetime(reps["hire_date"], errors="coerce")
    late = hire > pd.Timestamp(p.start) - pd.Timedelta(days=RAMP_DAYS)
    return {r: h.date().isoformat() for r, h in zip(reps.loc[late, "rep_id"], hire[late])}


def _strata(ds: Dataset, p: Period, reps: pd.DataFrame, roles: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """Per metric of :data:`STRATA`: the counts per rep and stratum (``rep_id``, ``stratum``,
    ``team``, ``num``, ``den``; ``attrs["dims"]`` the dimensions used). A dimension the table
    cannot reach, or with fewer than two values, is left out; with none left there is one
    stratum and the test is Fisher's exact test."""
    out: dict[str, pd.DataFrame] = {}
    wanted_roles = {"win_rate": ("AE", "AM"), "lead_conversion_rate": ("SDR",), "meeting_booked_rate": ("SDR",)}
    teams = reps.set_index("rep_id")["team"].astype("string").fillna("(no team)")
    for metric, (table, dims, num, den) in STRATA.items():
        if not ds.has(table) or not set(wanted_roles[metric]) & set(roles):
            continue
        dims = [d for d in dims if dimension_reachable(ds, table, d)]
        f = metrics(ds, [num, den], by=["rep_id", *dims], grain=p.grain, periods=[p])
        if num in f.attrs.get("unavailable", {}) or den in f.attrs.get("unavailable", {}):
            continue
        f = f.assign(rep_id=f["rep_id"].astype("string"))
        f = f[f["rep_id"].isin(reps["rep_id"])]
        used = [d for d in dims if f[d].dropna().nunique() > 1]
        key = pd.Series("all", index=f.index, dtype="string")
        if used:
            parts = [f[d].astype("string").fillna("(none)") for d in used]
            key = parts[0]
            for part in parts[1:]:  # vectorised: a row-wise join is minutes at 5,000 reps
                key = key + " / " + part
        st = pd.DataFrame({
            "rep_id": f["rep_id"].to_numpy(), "stratum": key.to_numpy(),
            "team": teams.reindex(f["rep_id"]).to_numpy(),
            "num": pd.to_numeric(f[num], errors="coerce").fillna(0).to_numpy(dtype=float),
            "den": pd.to_numeric(f[den], errors="coerce").fillna(0).to_numpy(dtype=float),
        })  # fmt: skip
        st = st.groupby(["rep_id", "stratum", "team"], as_index=False)[["num", "den"]].sum()
        st.attrs["dims"] = used
        out[metric] = st
    return out


def _mix_words(dims: list[str]) -> str:
    words = [_DIM_WORDS.get(d, d) for d in dims]
    return " and ".join(words) if len(words) <= 2 else ", ".join(words[:-1]) + " and " + words[-1]


def _per_rep(ds: Dataset, p: Period, reps: pd.DataFrame, strata: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per active rep: the counts behind every compared metric (one metrics call; the
    counts already queried per stratum are summed from ``strata`` instead)."""
    wanted = ["deals_won", "deals_closed"]
    if ds.has("activities"):
        wanted += ["activities", "calls", "booked_calls", "meetings", "demos", "rep_working_days", "rep_working_weeks"]
    if ds.has("leads"):
        wanted += ["leads_converted", "leads_created"]
    known = pd.DataFrame({"rep_id": reps["rep_id"].astype("string")})
    for metric, st in (strata or {}).items():
        _, _, num, den = STRATA[metric]
        tot = st.groupby("rep_id")[["num", "den"]].sum().rename(columns={"num": num, "den": den})
        known = known.merge(tot, left_on="rep_id", right_index=True, how="left")
        known[[num, den]] = known[[num, den]].fillna(0)
    query = [c for c in wanted if c not in known.columns]
    f = metrics(ds, query, by="rep_id", grain=p.grain, periods=[p])
    gone = set(f.attrs.get("unavailable", {}))
    f = f.assign(rep_id=f["rep_id"].astype("string"))
    out = reps.merge(f.drop(columns=["period"]), on="rep_id", how="left").merge(known, on="rep_id", how="left")
    for c in wanted:
        if c in out.columns:
            out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    for mid, (num, den) in _NUM_DEN.items():
        if num in out.columns and den in out.columns and num not in gone and den not in gone:
            out[mid] = np.where(out[den] > 0, out[num] / out[den].where(out[den] > 0), np.nan)
    if "meetings" in out.columns and "rep_working_weeks" in out.columns:
        weeks = out["rep_working_weeks"].where(out["rep_working_weeks"] > 0)
        out["meetings_demos_per_week"] = (out["meetings"].fillna(0) + out["demos"].fillna(0)) / weeks
    return out


def _min_sample(spec_sample: str, cfg) -> float:
    return {"deals": cfg.min_closed_deals, "activities": cfg.min_activities, "days": MIN_WORKING_DAYS}[spec_sample]


def _compare(spec: Spec, role: str, g: pd.DataFrame, cfg, cols: tuple[str, str] | None = None,
             strata: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each eligible rep of one role against the rest of the peers, on one metric (stratum by
    stratum when ``strata`` are given, see :func:`stratified_fisher`)."""
    num_col, den_col = cols or _NUM_DEN[spec.metric]
    g = g[g[den_col].fillna(0) > 0].reset_index(drop=True)
    need = _min_sample(spec.sample, cfg)
    size = g["rep_working_days"] if spec.sample == "days" else g[den_col]
    eligible = (size >= need).to_numpy()
    if eligible.sum() < MIN_PEERS + 1:
        return pd.DataFrame()
    k = g[num_col].fillna(0).to_numpy(dtype=float)
    n = g[den_col].to_numpy(dtype=float)
    x = g[spec.metric].to_numpy(dtype=float)
    mix = ""
    if spec.test == "proportion":
        low, high = (s.to_numpy(dtype=float, na_value=np.nan) for s in wilson_interval(k, n))
        K, N, mix = _strata_matrix(strata, g, spec.metric)
    # the rest of the peers' sums are the totals minus the rep's own: exact for counts (whole
    # numbers far below 2**53, as every count here is), so each rep costs O(strata), not
    # O(peers x strata); any other numbers are summed over the rest as they are
    whole = _whole(k) and _whole(n)
    k_tot, n_tot = k.sum(), n.sum()
    if spec.test == "proportion" and K is not None:
        whole_s = _whole(K) and _whole(N)
        K_tot, N_tot = K.sum(axis=0), N.sum(axis=0)
    n_eligible = int(eligible.sum())
    ids, names, teams = (g[c].to_numpy(dtype=object) for c in ("rep_id", "name", "team"))
    rows = []
    pending: list[tuple[int, tuple]] = []
    for i in np.flatnonzero(eligible):
        if spec.test == "proportion":
            # the pool is every other peer with data; at least MIN_PEERS of them must be eligible
            if n_eligible - 1 < MIN_PEERS:
                continue
            expected = np.nan
            if K is None:
                if whole:
                    kr, nr = k_tot - k[i], n_tot - n[i]
                else:
                    rest = np.arange(len(g)) != i
                    kr, nr = k[rest].sum(), n[rest].sum()
                peer = kr / nr
                pv = float(fisher_less(k[i], n[i], kr, nr)[()] if spec.higher_is_better else fisher_greater(k[i], n[i], kr, nr)[()])
                lo, hi = low[i], high[i]
                test = "Fisher exact, one-sided, vs the pooled rest of the peers"
                peer_k, peer_n = kr, nr
                ki, ni = k[i], n[i]
            else:
                # like with like: only strata where the rest of the peers have trials count
                if whole_s:
                    kr_s, nr_s = K_tot - K[i], N_tot - N[i]
                else:
                    rest = np.arange(len(g)) != i
                    kr_s, nr_s = K[rest].sum(axis=0), N[rest].sum(axis=0)
                inf = (N[i] > 0) & (nr_s > 0)
                ki, ni = K[i, inf].sum(), N[i, inf].sum()
                if ni < need or ni <= 0:
                    continue
                expected = expected_successes(N[i, inf], kr_s[inf], nr_s[inf])
                peer = expected / ni
                pv = np.nan  # filled below, all reps' exact tests in one batch
                pending.append((len(rows), (K[i, inf], N[i, inf], kr_s[inf], nr_s[inf])))
                lo, hi = wilson_interval(float(ki), float(ni))
                test = (f"exact test stratified by {mix} (Fisher within each of {int(inf.sum())} strata), one-sided, "
                        "vs the rest of the peers on the same mix")
                peer_k, peer_n = kr_s[inf].sum(), nr_s[inf].sum()
        else:
            pool = eligible.copy()
            pool[i] = False
            others = x[pool]
            if len(others) < MIN_PEERS:
                continue
            peer = float(others.mean())
            _, pv = peer_t_test(x[i], others, higher_is_better=spec.higher_is_better)
            lo = hi = expected = np.nan
            ki, ni = k[i], n[i]
            test = f"t test against the distribution of {len(others)} peers (df {len(others) - 1}), one-sided"
            peer_k, peer_n = k[pool].sum(), n[pool].sum()
        rows.append({
            "rep_id": ids[i], "name": names[i], "team": teams[i], "role": role,
            "flag": spec.metric, "kind": "metric", "metric": spec.metric,
            "value": ki / ni if spec.test == "proportion" else x[i], "peer_value": peer,
            "gap": (ki / ni if spec.test == "proportion" else x[i]) / peer - 1 if peer else np.nan,
            "numerator": ki, "denominator": ni, "peer_numerator": peer_k, "peer_denominator": peer_n,
            "value_low": lo, "value_high": hi, "test": test, "p_value": pv, "expected": expected,
            "x_higher": spec.higher_is_better, "x_spec": spec, "x_mix": mix,
        })  # fmt: skip
    if pending:
        pvs = _stratified_fisher_many([args for _, args in pending], lower=spec.higher_is_better)
        for (j, _), pv in zip(pending, pvs):
            rows[j]["p_value"] = pv
    return pd.DataFrame(rows)


def _whole(a: np.ndarray) -> bool:
    """Finite whole numbers whose sum is exact in float64 (counts): sums of them do not depend on
    the order of the additions, so the rest's sum is the total minus one's own, exactly."""
    a = np.asarray(a, dtype=float)
    return bool(np.isfinite(a).all() and (a == np.round(a)).all() and np.abs(a).sum() < 2.0**53)


def _strata_matrix(strata: pd.DataFrame | None, g: pd.DataFrame, metric: str):
    """Counts per rep (rows in ``g`` order) and stratum, and the words for the mix; ``(None,
    None, "")`` when the metric is not stratified (one stratum: plain Fisher).

    Without a segment, win rates are compared within the team only when the teams of the role
    differ (chi-square test of team x won/lost, p < :data:`TEAM_HETEROGENEITY_P`): comparing
    with teammates only costs power, so it is done only when the teams are not alike."""
    if strata is None or strata.empty:
        return None, None, ""
    st = strata[strata["rep_id"].isin(g["rep_id"])]
    dims = list(strata.attrs.get("dims", []))
    key = st["stratum"]
    if metric == "win_rate" and "segment" not in dims:
        by_team = st.groupby("team")[["num", "den"]].sum()
        by_team = by_team[by_team["den"] > 0]
        if len(by_team) > 1:
            table = np.c_[by_team["num"], by_team["den"] - by_team["num"]]
            if (table.sum(axis=0) > 0).all():
                if stats.chi2_contingency(table)[1] < TEAM_HETEROGENEITY_P:
                    key = st["team"].astype("string") + " | " + key
                    dims = ["team", *dims]
    if not dims:
        return None, None, ""
    rows = g["rep_id"].astype("string")
    if st.empty:
        K, N = np.zeros((len(rows), 0)), np.zeros((len(rows), 0))
    else:
        both = st.assign(key=key).pivot_table(index="rep_id", columns="key", values=["num", "den"], aggfunc="sum",
                                              fill_value=0)
        K = both["num"].reindex(rows, fill_value=0).to_numpy(dtype=float)
        N = both["den"].reindex(rows, fill_value=0).to_numpy(dtype=float)
    return K, N, _mix_words(dims)


def _stall_tests(ds: Dataset, reps: pd.DataFrame, as_of: date, cfg) -> list[pd.DataFrame]:
    """Per step: the share of each rep's open deals at the step that are stalled at ``as_of``."""
    from analysis.analytics.funnel import stall_candidates

    if reps.empty:
        return []
    # the deals open at as_of in a known step, each with its time in the step and the step's
    # threshold: the snapshot's deals per rep and step, and the stalled ones among them (the
    # deals stalled_deals lists: days_in_step > threshold_days), from one memoized frame, so
    # neither a second snapshot query nor stalled_deals' scan of the activities is needed
    cand = stall_candidates(ds, as_of=as_of)
    cand = cand.assign(rep_id=cand["rep_id"].astype("string"))
    cand = cand[cand["rep_id"].isin(reps["rep_id"]) & cand["step"].isin(STALL_STEPS)]
    cand = cand.assign(_stalled=(cand["days_in_step"] > cand["threshold_days"]).astype("float64"))
    snap = cand.groupby(["rep_id", "step"], sort=True).agg(deals=("_stalled", "size"), stalled=("_stalled", "sum"))
    snap = snap.reset_index()
    snap["deals"] = snap["deals"].astype("int64")
    snap["stalled"] = snap["stalled"].astype("float64")
    snap = snap.merge(reps[["rep_id", "name", "team", "role"]], on="rep_id")
    frames = []
    for (role, step), g in snap.groupby(["role", "step"], sort=True):
        spec = Spec(f"stalled_share_{step}", (role,), "proportion", "deals", f"open deals at {STEP_LABELS[step]}",
                    f"share of open deals stalled at {STEP_LABELS[step]}", f"moving deals on from {STEP_LABELS[step]}",
                    higher_is_better=False)
        g = g.rename(columns={"stalled": "_num", "deals": "_den"}).reset_index(drop=True)
        g[spec.metric] = g["_num"] / g["_den"].where(g["_den"] > 0)
        # stall thresholds are company-wide, and some teams' deals (enterprise) are slower by
        # nature: each rep is compared with the peers of the same team only
        strata = pd.DataFrame({"rep_id": g["rep_id"], "stratum": g["team"].astype("string").fillna("(no team)"),
                               "team": g["team"], "num": g["_num"].astype(float), "den": g["_den"].astype(float)})
        strata.attrs["dims"] = ["team"]
        f = _compare(spec, role, g, cfg, cols=("_num", "_den"), strata=strata)
        if not f.empty:
            f["flag"] = f"stalling_at_{step}"
            f["kind"] = "pattern"
            frames.append(f)
    return frames


def _patterns(out: pd.DataFrame, per_rep: pd.DataFrame | None) -> pd.DataFrame:
    """Relabel a flagged conversion metric as a pattern when the rep's volume is in the top
    quarter of the peers (many calls / meetings, few results)."""
    out = out.copy()
    out["x_volume"] = np.nan
    out["x_volume_p75"] = np.nan
    if per_rep is None:
        return out
    volume_of = {"meeting_booked_rate": "calls_per_day", "win_rate": "meetings_demos_per_week"}
    # per_rep as arrays once (not a frame filter per flagged row)
    rep_ids = per_rep["rep_id"].astype("string").fillna("\x00").to_numpy(dtype=object)
    roles = per_rep["role"].to_numpy(dtype=object)
    if "rep_working_days" not in per_rep.columns:  # no activities: no volume to read
        return out
    working = (per_rep["rep_working_days"].fillna(0) >= MIN_WORKING_DAYS).to_numpy(dtype=bool)
    first = {}
    for j, r in enumerate(rep_ids):
        first.setdefault(r, j)
    volumes = {v: per_rep[v].to_numpy(dtype=float, na_value=np.nan) for v in volume_of.values() if v in per_rep.columns}
    flag, kind, x_volume, x_p75 = (out[c].to_numpy(copy=True) for c in ("flag", "kind", "x_volume", "x_volume_p75"))
    metrics_, roles_out, reps_out = (out[c].to_numpy(dtype=object) for c in ("metric", "role", "rep_id"))
    for i in np.flatnonzero(out["flagged"].to_numpy()):
        metric = metrics_[i]
        vcol = volume_of.get(metric)
        if vcol is None or vcol not in volumes:
            continue
        v = volumes[vcol]
        peers = v[(roles == roles_out[i]) & (rep_ids != reps_out[i]) & working]
        peers = peers[~np.isnan(peers)]
        j = first.get(reps_out[i])
        if len(peers) < MIN_PEERS or j is None or np.isnan(v[j]):
            continue
        p75 = float(np.quantile(peers, 0.75))
        x_volume[i] = float(v[j])
        x_p75[i] = p75
        if float(v[j]) >= p75:
            flag[i] = _PATTERN_OF[metric]
            kind[i] = "pattern"
    out["flag"], out["kind"], out["x_volume"], out["x_volume_p75"] = flag, kind, x_volume, x_p75
    return out


def _mentors(out: pd.DataFrame, reps: pd.DataFrame, last: date) -> pd.DataFrame:
    """For each flagged row, the peer strongest on exactly that metric (see the module notes)."""
    out = out.copy()
    out["mentor_rep_id"] = pd.NA
    out["mentor_name"] = pd.NA
    out["mentor_value"] = np.nan
    out["x_mentor_k"] = np.nan
    out["x_mentor_n"] = np.nan
    end = pd.to_datetime(reps.set_index("rep_id")["end_date"], errors="coerce")
    staying = set(end[end.isna() | (end > pd.Timestamp(last))].index)
    names = reps.set_index("rep_id")["name"]
    flagged = out["flagged"].to_numpy(bool)
    eligible = out["rep_id"].astype(object).isin(staying).to_numpy(bool) & ~flagged
    # the candidates of a flagged row are the unflagged, staying peers of its role on its metric:
    # the same for every flagged row of that (metric, role), so the best one is found once
    best: dict[tuple, Any] = {}
    for i in np.flatnonzero(flagged):
        row = out.loc[i]
        key = (row["metric"], row["role"], bool(row["x_mix"]))
        if key not in best:
            best[key] = _best_mentor(out[eligible & (out["metric"] == key[0]).to_numpy(bool)
                                         & (out["role"] == key[1]).to_numpy(bool)], row["x_spec"], key[2])
        j = best[key]
        if j is None:
            continue
        if key[2]:
            mine, theirs = row["value"] / row["peer_value"], out.at[j, "value"] / out.at[j, "peer_value"]
        else:
            mine, theirs = row["value"], out.at[j, "value"]
        better = theirs > mine if row["x_spec"].higher_is_better else theirs < mine
        if not better:
            continue
        out.at[i, "mentor_rep_id"] = out.at[j, "rep_id"]
        out.at[i, "mentor_name"] = names.get(out.at[j, "rep_id"], out.at[j, "rep_id"])
        out.at[i, "mentor_value"] = out.at[j, "value"]
        out.at[i, "x_mentor_k"] = out.at[j, "numerator"]
        out.at[i, "x_mentor_n"] = out.at[j, "denominator"]
    return out


def _best_mentor(cand: pd.DataFrame, spec: "Spec", mixed: bool) -> Any:
    """Index of the candidate strongest on the metric (Wilson bound for proportions, relative to
    the candidate's own expected rate when ``mixed``), or None."""
    if cand.empty:
        return None
    if spec.test == "proportion":
        lo, hi = wilson_interval(cand["numerator"], cand["denominator"])
        lo, hi = lo.to_numpy(dtype=float), hi.to_numpy(dtype=float)
        if mixed:  # relative to what the peers achieve on each candidate's own mix
            ref = cand["peer_value"].to_numpy(dtype=float)
            lo, hi = lo / ref, hi / ref
        score = lo if spec.higher_is_better else -hi
    else:
        score = cand["value"].to_numpy(dtype=float) * (1 if spec.higher_is_better else -1)
    if np.isnan(score).all():
        return None
    return cand.index[int(np.nanargmax(score))]


# -- words -----------------------------------------------------------------------------------


def _flag_label(flag: str) -> str:
    if flag == "many_calls_few_meetings":
        return "many calls, few meetings"
    if flag == "many_meetings_low_win_rate":
        return "many meetings, low win rate"
    if flag.startswith("stalling_at_"):
        return f"deals stalling at {STEP_LABELS.get(flag.removeprefix('stalling_at_'), flag)}"
    return flag.replace("_", " ")


def _pct(x: float) -> str:
    return f"{x:.0%}" if abs(x) >= 0.1 or x == 0 else f"{x:.1%}"


def _int(x: float) -> str:
    return f"{int(round(x)):,}"


def _p_text(p: float) -> str:
    if p < 0.001:
        return "< 0.001"
    return f"= {p:.3f}" if p < 0.01 else f"= {p:.2f}"


def _value_text(spec: Spec, value: float, k: float, n: float) -> str:
    if spec.test == "proportion":
        return f"{_pct(value)} ({_int(k)} of {_int(n)} {spec.unit})"
    return f"{value:.1f}"


def _evidence(r: Any, m: int) -> str:
    spec: Spec = r.x_spec
    mine = _value_text(spec, r.value, r.numerator, r.denominator)
    if spec.test == "proportion" and r.x_mix:
        pooled = r.peer_numerator / r.peer_denominator
        peers = (f"{_pct(r.peer_value)} expected from the other {r.role}s' rates in the same {r.x_mix} "
                 f"({r.expected:.1f} of {_int(r.denominator)}; their pooled rate {_pct(pooled)}, "
                 f"{_int(r.peer_numerator)} of {_int(r.peer_denominator)})")
        ci = f"; 95% CI {_pct(r.value_low)} to {_pct(r.value_high)}"
    elif spec.test == "proportion":
        peers = f"{_pct(r.peer_value)} ({_int(r.peer_numerator)} of {_int(r.peer_denominator)}) for the other {r.role}s"
        ci = f"; 95% CI {_pct(r.value_low)} to {_pct(r.value_high)}"
    else:
        peers = f"a mean of {r.peer_value:.1f} for the other {r.role}s"
        ci = ""
    text = (f"{spec.label} {mine}{ci} vs {peers}; gap {r.gap:+.0%}; {r.test} p {_p_text(r.p_value)}, "
            f"Benjamini-Hochberg q {_p_text(r.q_value)} over {m} comparisons")
    if r.flag in ("many_calls_few_meetings", "many_meetings_low_win_rate") and not np.isnan(r.x_volume):
        what = "calls per working day" if r.flag == "many_calls_few_meetings" else "meetings and demos per week"
        text += f"; {what} {r.x_volume:.1f} (peers' 75th percentile {r.x_volume_p75:.1f})"
    return text


def _sentence(r: Any, p: Period | None = None, *, name_mentor: bool = True) -> str:
    spec: Spec = r.x_spec
    name, role = r.name, r.role
    q = f"adjusted p {_p_text(r.q_value)}"
    if spec.test == "proportion" and r.x_mix:
        mine = _value_text(spec, r.value, r.numerator, r.denominator)
        peers = (f"{_pct(r.peer_value)} ({r.expected:.0f} of {_int(r.denominator)}) expected for other {role}s "
                 f"with the same mix of {_plural_mix(r.x_mix)}")
    elif spec.test == "proportion":
        mine = _value_text(spec, r.value, r.numerator, r.denominator)
        peers = f"{_pct(r.peer_value)} for other {role}s"
    else:
        mine = f"{r.value:.1f}"
        peers = f"{r.peer_value:.1f} for other {role}s"
    if r.flag == "many_calls_few_meetings":
        head = (f"{name} makes many calls but books few meetings: {r.x_volume:.1f} calls per working day "
                f"(top quarter of {role}s) yet only {mine} booked a meeting, against {peers} ({q})")
    elif r.flag == "many_meetings_low_win_rate":
        head = (f"{name} holds many meetings but wins few deals: {r.x_volume:.1f} meetings and demos per week "
                f"(top quarter of {role}s) yet a win rate of {mine}, against {peers} ({q})")
    elif r.flag.startswith("stalling_at_"):
        step = STEP_LABELS[r.flag.removeprefix("stalling_at_")]
        head = (f"{_int(r.numerator)} of {name}'s {_int(r.denominator)} open deals at {step} are stalled "
                f"({_pct(r.value)}), against {peers} ({q})")
    else:
        head = f"{name}'s {spec.label} is {mine} against {peers} ({q})"
    if isinstance(r.mentor_name, str) and not name_mentor:
        tail = f"; the manager can pair {name} with the peer strongest on {spec.topic} (not named here)."
    elif isinstance(r.mentor_name, str):
        if spec.test == "proportion":
            mv = f"{_pct(r.mentor_value)}, {_int(r.x_mentor_k)} of {_int(r.x_mentor_n)}"
        else:
            mv = f"{r.mentor_value:.1f}"
        tail = f"; pair {name} with {r.mentor_name} ({mv}) on {spec.topic}."
    else:
        tail = f"; review {spec.topic} with {name}."
    if p is not None and isinstance(r.hire_date, str):
        if (p.last_day - date.fromisoformat(r.hire_date)).days < JOINED_NOTE_DAYS:
            head += f"; {name} joined on {r.hire_date}"
    return head + tail


def _plural_mix(mix: str) -> str:
    for word in ("segment", "deal type", "lead source", "team"):
        mix = mix.replace(word, word + "s")
    return mix
