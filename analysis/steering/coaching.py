"""Coaching flags: where a rep is significantly below the peers of the same role (SPEC section 7).

``coaching_flags(ds, "2026-Q3")`` returns one row per flag: the rep, the metric or pattern,
the rep's value against the peers', the evidence (numerator / denominator, test and p-value),
a suggested mentor (the peer strongest on exactly that metric) and a sentence a manager can
act on. ``coaching_worth_a_look`` lists the reps with a large gap whose evidence is not yet
significant (no mentor); ``coaching_notes`` gives both from one computation (what a review
shows). ``coaching_tests`` returns every comparison that was made, flagged or not.

The rules
---------
Who does the work, and the peers
    A measure is examined for every rep who does the work it measures, whatever the role: a
    rate of calls (meeting booked rate) for a rep with at least ``config.coaching.min_activities``
    (30) calls in the period, lead conversion for one with at least that many leads, win rate
    for one with at least ``config.coaching.min_closed_deals`` (8) closed deals -- so an AE
    with 600 calls and 3 meetings booked is examined on the meeting booked rate like an SDR.
    The peers are the *other* reps of the same role (``reps.role``: SDR, AE, AM) who do that
    work in the period (same thresholds): an AE's calls are compared with the calls of the AEs
    who call, never with the SDRs', whose calls are a different job (cold prospecting against
    calls on open deals); the stall tests pool every open deal at the step (see Patterns). A
    rep is never in their own pool. When fewer than :data:`MIN_PEERS` + 1 reps of a role do
    the work (too few to compare), the measure is not compared for that role and
    ``attrs["not_compared"]`` says so in a sentence (shown by :func:`coaching_summary`); reps
    are never compared across roles to fill the gap. The volumes per working day (calls for
    SDRs, activities for AEs and AMs) stay with the role whose job they measure: among "the AEs
    who make at least 30 calls" a volume would be selected on itself. Managers are not
    compared.
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
What is compared (see :data:`SPECS`)
    Every role, among the reps who do the work: ``win_rate`` (deals won / closed in P),
    ``meeting_booked_rate`` (calls that booked a meeting / calls) and ``lead_conversion_rate``.
    AE and AM also: ``activities_per_day`` and the share of their open deals stalled at each
    funnel step at the end of P (within the team); SDR also: ``calls_per_day``. Deal size and
    cycle length are not compared: across one role they are driven by the team's segment (SMB
    against Enterprise), not by the rep.
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
    Every test made in one call (all reps x all measures they are examined on, the measures of
    other roles' work and the stall tests included) is one family: the p-values are adjusted
    by Benjamini-Hochberg over all of them (``attrs["tests"]`` counts them; the evidence says
    "over m comparisons"), and a flag needs ``q <= config.coaching.alpha`` (a false discovery
    rate of 1 % by default, see "Measured" below). Examining more measures makes the family
    larger, so each q is larger: a flag is never bought by leaving tests out of the count.
Effect size
    Significance is not enough: the rep must also be at least :data:`MIN_GAP` (25 %) worse than
    the peers in relative terms (a win rate of at most 75 % of the peers'); for the two
    volume-and-conversion patterns :data:`PATTERN_GAP` (20 %) is enough, since the top-quarter
    volume is a second signal; a stalled share must be at least :data:`STALL_GAP` (50 %) higher
    than the peers'.
Minimum sample
    Deal metrics need ``config.coaching.min_closed_deals`` closed deals (open deals at the step
    for stalling); activity and lead metrics ``config.coaching.min_activities`` calls or
    leads; rates per day :data:`MIN_WORKING_DAYS` working days. These are the thresholds of
    "doing the work": smaller samples are neither tested nor part of the peers' pool (the stall
    tests' pool excepted, see Patterns), and a comparison needs at least :data:`MIN_PEERS` other
    peers.
Worth a look
    A comparison that is not a flag, whose evidence is suggestive but not yet significant
    (``config.coaching.alpha < q <= config.coaching.worth_a_look_q``, 0.2 by default: all the
    comparisons with q <= 0.2 together hold at most 20 % false discoveries, and these, their
    weaker part, may hold more -- a prompt to watch, not a finding) and whose gap is large: the
    rep's value is at most ``config.coaching.worth_a_look_ratio`` (one half) of the peers'.
    Measures only (:data:`SPECS`): stalled shares are not listed, since on generated data the
    notes they gave fell on average and strong reps (see "Measured"), and their flag already
    needs the team's own comparison. A large gap on a small sample is what a manager should see
    early, before it is significant (an AE winning 1 of 10 deals against 61 % for the other
    five AEs: q = 0.04 among 18 tests); a smaller gap is not listed (27 of 60, 45 %, against
    63 %: q = 0.07, but 71 % of the peers' rate). One rule for every measure, relative, since
    points of a rate mean nothing for calls per day. The
    evidence is written plainly ("won 1 of 10 closed deals (10%) against 61% for the other 5
    AEs; not yet significant (q = 0.040)") and no mentor is suggested: the gap may be noise,
    and pairing someone on noise is not coaching. Same samples, peers and tests as the flags;
    the q values are those of the whole family.
Patterns
    ``many_calls_few_meetings``: a rep (of any role) flagged on meeting booked rate whose calls
    per day are in the top quarter of the same role's peers (at least their 75th percentile).
    ``many_meetings_low_win_rate``: a rep flagged on win rate whose meetings and demos per week
    are in the top quarter of the same role's peers.
    The pattern replaces the metric flag it rests on (same test, one row).
    ``stalling_at_<step>``: the share of the rep's open deals at that step that are stalled
    (:func:`analysis.funnel.stalled_deals`) at the end of P is significantly above that of the
    peers *of the same team* (Fisher's exact test within the team). The stall thresholds are
    company-wide, so a team with long cycles (Enterprise) "stalls" as a whole; compared with
    the whole role it named Enterprise AEs in three seeds out of four on synthetic data without
    any per-rep stalling. Within the team: no stall flag on the null and normal generated
    datasets (seeds 1-3, 2026-Q3 and 2026-H1), while 15 deals of one AE moved 120 days back at
    qualification are flagged (q < 0.001). ``stalling=False`` turns it off. The pool here is
    every other rep of the role (in the team) with open deals at the step, not only those with
    the minimum sample: every open deal at the step is part of the team's ordinary pipeline,
    and a team often has a single rep with 8 open deals at a step, who would otherwise have no
    one to be compared with (the minimum sample guards the tested rep's own evidence).
Mentor
    The peer of the same role, still employed at the end of the data, with enough sample,
    strongest on exactly that metric: proportions ranked by the 95 % Wilson bound (the lower
    bound for a rate where higher is better, the upper bound where lower is better), so that a
    2-of-3 rep never outranks a 40-of-80 rep -- for a stratified proportion the bound divided
    by the candidate's own expected rate, so a rep selling into easy segments does not win on
    mix alone; rates per day by value. Flags only: a worth-a-look note has no mentor.
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
    *Every role's work, worth a look* (same generator, 40 reps, 12 months, seeds 1-6 x the three
    periods; the tests per call grew from 83-102 to 104-125): in the null world, no false flag
    and no false worth-a-look note, and the worth-a-look list named the planted weak AE in the
    one quarter where his flag was missed (q = 0.017). In the generated world 42 flags were
    added (39 on the AEs' and AMs' meeting booked rate, 3 win rates moved by the new pools and
    family), 41 of them on reps whose latent factor (call quality; skill for win rate) is below
    -0.5 SD (24 below -1 SD); the 8 worth-a-look notes on measures all fell on reps at or
    below -1 SD of the relevant factor (skill, call quality, or hustle for activities), while
    the 11 notes that stalled shares would have given fell on reps of skill -1.6 to +2.0, hence
    measures only. At 5,000 reps (2026-Q3): 15,974 tests instead of 13,171, 570 flags instead
    of 411 and 129 worth-a-look notes, in less time than before (3.6 s against 4.2 s, 5.6
    CPU-seconds against 6.1; most of it is the queries, not the tests): all reps of a role are
    compared at once, and the lower tail of the exact test stops at the observed count.
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
    "expected", "hire_date", "peers",
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
    #: the rep's figure in plain words, after the name: "won {k} of {n} closed deals ({value})"
    #: (``k``, ``n`` whole numbers, ``value`` a percentage or a rate, all formatted)
    plain: str = ""


#: The compared measures. A proportion is examined for every role (among the reps who do the
#: work, see the module notes); a volume per working day for the role whose job it measures.
SPECS: tuple[Spec, ...] = (
    Spec("win_rate", COACHED_ROLES, "proportion", "deals", "closed deals", "win rate",
         "qualifying deals and closing them", plain="won {k} of {n} closed deals ({value})"),
    Spec("activities_per_day", ("AE", "AM"), "rate", "days", "working days", "activities per working day",
         "planning the week and protecting selling time", plain="logged {value} activities per working day"),
    Spec("calls_per_day", ("SDR",), "rate", "days", "working days", "calls per working day",
         "blocking time for call sessions", plain="made {value} calls per working day"),
    Spec("meeting_booked_rate", COACHED_ROLES, "proportion", "activities", "calls", "meeting booked rate",
         "call openings and asking for the meeting", plain="booked a meeting on {k} of {n} calls ({value})"),
    Spec("lead_conversion_rate", COACHED_ROLES, "proportion", "activities", "leads", "lead conversion rate",
         "qualifying leads and following up", plain="converted {k} of {n} leads ({value})"),
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
        ``mentor_value``, ``sentence``, ``expected``, ``hire_date``, ``peers`` (the other reps of
        the role who do the work, compared against). Sorted by role, q_value. ``attrs`` hold
        ``period``, ``tests`` (comparisons made, the family of the correction), ``alpha``,
        ``as_of``, ``ramping`` and ``not_compared`` (sentences: measures a role has too few reps
        doing to compare).

    Notes
    -----
    See the module docstring for the tests, the multiple-comparison control, the effect
    thresholds and the minimum samples. An empty frame (with these columns) means no rep is
    significantly below the peers.
    """
    return coaching_notes(ds, period, role=role, alpha=alpha, min_gap=min_gap, stalling=stalling,
                          name_mentors=name_mentors).flags


def coaching_worth_a_look(
    ds: Dataset,
    period: str | Period,
    *,
    role: str | None = None,
    alpha: float | None = None,
    min_gap: float = MIN_GAP,
    stalling: bool = True,
) -> pd.DataFrame:
    """Reps with a large gap against the peers of their role whose evidence is not yet significant.

    Same parameters as :func:`coaching_flags` and the same columns (:data:`COLUMNS`), one row
    per comparison with ``config.coaching.alpha < q_value <= config.coaching.worth_a_look_q``
    and a value at most ``config.coaching.worth_a_look_ratio`` of the peers' (see "Worth a look"
    in the module notes). ``evidence`` states it plainly ("won 1 of 10 closed deals (10%)
    against 61% for the other 5 AEs; not yet significant (q = 0.040)"), ``sentence`` is the
    rep's name followed by it; the mentor columns are empty: no mentor is suggested on evidence
    that may be noise. Sorted by role, q_value; ``attrs`` as :func:`coaching_flags`'.
    """
    return coaching_notes(ds, period, role=role, alpha=alpha, min_gap=min_gap, stalling=stalling).worth_a_look


@dataclass(frozen=True)
class CoachingNotes:
    """What a review shows on coaching, from one computation: ``flags`` (as
    :func:`coaching_flags`) and ``worth_a_look`` (as :func:`coaching_worth_a_look`), both with
    the attrs of the whole family of tests."""

    flags: pd.DataFrame
    worth_a_look: pd.DataFrame


def coaching_notes(
    ds: Dataset,
    period: str | Period,
    *,
    role: str | None = None,
    alpha: float | None = None,
    min_gap: float = MIN_GAP,
    stalling: bool = True,
    name_mentors: bool = True,
) -> CoachingNotes:
    """The flags and the worth-a-look notes of one family of tests (one :func:`coaching_tests`)."""
    tests = coaching_tests(ds, period, role=role, alpha=alpha, min_gap=min_gap, stalling=stalling,
                           name_mentors=name_mentors)

    def rows(column: str) -> pd.DataFrame:
        f = tests[tests[column].to_numpy(bool)][COLUMNS].reset_index(drop=True)
        f.attrs.update(tests.attrs)
        return f

    return CoachingNotes(flags=rows("flagged"), worth_a_look=rows("worth_a_look"))


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
    """Every comparison behind :func:`coaching_flags`, flagged or not (columns ``flagged`` and
    ``worth_a_look``).

    Same parameters as :func:`coaching_flags`; mentors are filled for flagged rows only,
    evidence and sentences for flagged and worth-a-look rows. Useful to see how close a rep
    came to a flag.
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
    not_compared: list[str] = []
    extra = {"period": p.label, "alpha": alpha, "as_of": str(as_of), "ramping": ramping, "not_compared": not_compared}
    if not reps.empty:
        strata = _strata(ds, p, reps, roles)
        per_rep = _per_rep(ds, p, reps, strata)
        for spec in SPECS:
            for r in spec.roles:
                if r in roles and spec.metric in per_rep.columns:
                    g = per_rep[per_rep.role == r]
                    doers = int(does_the_work(spec, g, cfg).sum())
                    if 0 < doers <= MIN_PEERS:  # said, never silently compared with another role
                        not_compared.append(_too_few(spec, r, doers, cfg))
                    frames.append(_compare(spec, r, g, cfg, strata=strata.get(spec.metric)))
        owners = [r for r in ("AE", "AM") if r in roles]
        if stalling and ds.has("stage_history") and owners:
            frames.extend(_stall_tests(ds, reps[reps.role.isin(owners)], as_of, cfg))
    frames = [f for f in frames if not f.empty]
    if not frames:
        out = pd.DataFrame({c: pd.Series(dtype="object") for c in [*COLUMNS, "flagged", "worth_a_look"]})
        out["flagged"] = out["flagged"].astype(bool)
        out["worth_a_look"] = out["worth_a_look"].astype(bool)
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
    out = _patterns(out, per_rep if not reps.empty else None, cfg)
    out["flagged"] = out["flagged"] & ((out["kind"] == "pattern").to_numpy() | (worse >= min_gap - 1e-12))
    # worth a look: a measure (not a stall share) with a large gap, not significant yet (see the
    # module notes); every measure is one where higher is better
    with np.errstate(invalid="ignore"):
        large = out["gap"].to_numpy(dtype=float) <= cfg.worth_a_look_ratio - 1 + 1e-12
        q = out["q_value"].to_numpy(dtype=float)
        out["worth_a_look"] = (~out["flagged"].to_numpy(bool) & ~stall & out["x_higher"].to_numpy(bool)
                               & (q > alpha) & (q <= cfg.worth_a_look_q) & large)
    out = _mentors(out, reps, ds.last_date())
    hire = pd.to_datetime(reps.set_index("rep_id")["hire_date"], errors="coerce")
    hired = {r: None if pd.isna(h) else h.date().isoformat() for r, h in hire.items()}
    out["hire_date"] = [hired.get(r) for r in out["rep_id"]]
    # words for the flagged and worth-a-look rows only (a few hundred of ~16,000 tests at 5,000
    # reps); m, the family of the correction, counts every test that gave a p-value
    m = int(out["p_value"].notna().sum())
    nb = ds.config.numbers
    evidence = np.full(len(out), "", dtype=object)
    sentence = np.full(len(out), "", dtype=object)
    flagged = out["flagged"].to_numpy(bool)
    for j, r in zip(np.flatnonzero(flagged), out[flagged].itertuples()):
        evidence[j] = _evidence(r, m)
        sentence[j] = _sentence(r, p, name_mentor=name_mentors)
    look = out["worth_a_look"].to_numpy(bool)
    for j, r in zip(np.flatnonzero(look), out[look].itertuples()):
        evidence[j] = _plain_evidence(r, nb, alpha)
        sentence[j] = f"{r.name} {evidence[j]}."
    out["evidence"] = list(evidence)
    out["sentence"] = list(sentence)
    out = out.sort_values(["flagged", "worth_a_look", "role", "q_value", "rep_id"],
                          ascending=[False, False, True, True, True], kind="stable")
    out = out[[*COLUMNS, "flagged", "worth_a_look"]].reset_index(drop=True)
    for c in ("value", "peer_value", "gap", "numerator", "denominator", "peer_numerator", "peer_denominator",
              "value_low", "value_high", "p_value", "q_value", "mentor_value", "expected"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Float64")
    out["peers"] = out["peers"].astype("int64")
    out.attrs.update(tests=m, **extra)
    return out


def coaching_summary(flags: pd.DataFrame, *, names_up_to: int | None = None) -> str:
    """One sentence for the review: how many reps were flagged, on what, out of how many tests.

    With more than ``names_up_to`` flagged reps the sentence counts the flags by kind instead of
    naming every rep (the review lists the notes below it). Measures a role has too few reps
    doing to compare (``attrs["not_compared"]``) and the reps still ramping are said after it.

    >>> coaching_summary(flags)  # doctest: +SKIP
    '2 reps need coaching in 2026-H1: Nadia Chen (win rate); Rafael Sanchez (many calls, few meetings).'
    """
    period = flags.attrs.get("period", "the period")
    tests = flags.attrs.get("tests")
    alpha = flags.attrs.get("alpha", 0.05)
    n_ramp = len(flags.attrs.get("ramping") or {})
    ramp = ""
    if n_ramp:
        ramp = (f" {n_ramp} {'rep' if n_ramp == 1 else 'reps'} hired less than {RAMP_DAYS} days before the period "
                f"{'was' if n_ramp == 1 else 'were'} still ramping and not compared.")
    few = "".join(" " + s for s in flags.attrs.get("not_compared") or [])
    if flags.empty:
        among = f" ({tests} comparisons, {alpha:.0%} false discovery rate)" if tests else ""
        return f"No rep is significantly below the peers of their role in {period}{among}." + ramp + few
    n = int(flags["rep_id"].nunique())
    who = "1 rep needs" if n == 1 else f"{n:,} reps need"
    if names_up_to is not None and n > names_up_to:
        counts = flags["flag"].map(_flag_label).value_counts(sort=True)
        kinds = "; ".join(f"{label} {c:,}" for label, c in counts.items())
        return f"{who} coaching in {period} ({len(flags):,} flags: {kinds})." + ramp + few
    parts = []
    for rep_id, g in flags.groupby("rep_id", sort=False):
        what = " and ".join(dict.fromkeys(_flag_label(f) for f in g["flag"]))  # labels hold commas
        parts.append(f"{g['name'].iloc[0]} ({what})")
    return f"{who} coaching in {period}: {'; '.join(parts)}." + ramp + few


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
    its strata order, so each p-value is exactly the one-case one.

    Notes
    -----
    For the lower tail P(K <= k) only totals up to k matter: with ``lo_s`` the smallest
    possible count in stratum s and ``b = k - sum(lo_s)``, a stratum's count above ``lo_s + b``
    (or a running total above ``b`` past the minimum) cannot be part of a total <= k, so each
    support is cut there. The terms that are kept are the same numbers, so the p-value is the
    same; a rep with 3 meetings booked from 600 calls costs 4 terms per stratum instead of 601.
    """
    prepared = []
    for case in cases:
        k, n, kr, nr = (np.atleast_1d(np.asarray(x, dtype=float)) for x in case)
        use = n > 0
        ns, total, succ = n[use], n[use] + nr[use], k[use] + kr[use]
        los = np.maximum(0, ns - (total - succ)).astype(np.int64)
        his = np.minimum(ns, succ).astype(np.int64)
        budget = int(round(k[use].sum())) - int(los.sum())
        if lower and budget >= 0:
            his = np.minimum(his, los + budget)
        prepared.append((k, n, ns, total, succ, los, his, budget))
    sizes = np.concatenate([c[6] - c[5] + 1 for c in prepared]) if prepared else np.zeros(0, np.int64)
    parts: list[np.ndarray] = []
    if len(sizes):
        starts = np.concatenate([c[5] for c in prepared])
        offsets = np.cumsum(sizes) - sizes
        x = (np.arange(int(sizes.sum())) - np.repeat(offsets - starts, sizes)).astype(float)
        total, succ, ns = (np.repeat(np.concatenate([c[i] for c in prepared]), sizes) for i in (3, 4, 2))
        parts = np.split(_hypergeom_pmf(x, total, succ, ns), np.cumsum(sizes)[:-1])
    out = []
    at = 0
    for k, n, _, _, _, los, _, budget in prepared:
        pmf = np.ones(1)
        cut = lower and budget >= 0
        for part in parts[at:at + len(los)]:
            if not (len(part) == 1 and part[0] == 1.0):  # convolving with [1.0] changes nothing
                pmf = np.convolve(pmf, part)
                if cut:
                    pmf = pmf[: budget + 1]
        at += len(los)
        observed = int(round(k[n > 0].sum())) - int(los.sum())
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
    if len(o) < 2 or np.isnan(x):
        return float("nan"), float("nan")
    t, df = _t_statistic(x, o)
    p = stats.t.cdf(t, df) if higher_is_better else stats.t.sf(t, df)
    return float(t), float(p)


def _t_statistic(x: float, o: np.ndarray) -> tuple[float, int]:
    """t and degrees of freedom of :func:`peer_t_test` (``o``: the peers' rates, at least 2, no NaN)."""
    k = len(o)
    mean, sd = o.mean(), o.std(ddof=1)
    if sd == 0:
        t = -np.inf if x < mean else (np.inf if x > mean else 0.0)
    else:
        t = (x - mean) / (sd * np.sqrt(1 + 1 / k))
    return float(t), k - 1


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
    # sorted: engines return rows in different orders, and ties (the mentor chosen) follow it
    reps = ds.table("reps").select(*cols).order_by("rep_id").to_pandas()
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
    wanted_roles = {spec.metric: spec.roles for spec in SPECS if spec.metric in STRATA}
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


def does_the_work(spec: Spec, per_rep: pd.DataFrame, cfg, cols: tuple[str, str] | None = None) -> np.ndarray:
    """Which reps (rows of ``per_rep``) do the work ``spec`` measures: a denominator above zero
    and at least the minimum sample (``cfg.min_closed_deals`` closed deals, ``cfg.min_activities``
    calls or leads, :data:`MIN_WORKING_DAYS` working days for a rate per day), see the module
    notes. Only they are tested, and only they make the peers' pool."""
    _, den_col = cols or _NUM_DEN[spec.metric]
    if den_col not in per_rep.columns:
        return np.zeros(len(per_rep), dtype=bool)
    den = per_rep[den_col].astype("float64").fillna(0)
    size = per_rep["rep_working_days"].astype("float64").fillna(0) if spec.sample == "days" else den
    return ((den > 0) & (size >= _min_sample(spec.sample, cfg))).to_numpy(dtype=bool)


def _too_few(spec: Spec, role: str, doers: int, cfg) -> str:
    """The sentence for a measure a role has too few reps doing to compare."""
    need = _min_sample(spec.sample, cfg)
    who = f"1 {role} has" if doers == 1 else f"{doers} {role}s have"
    return (f"{spec.label.capitalize()} is not compared among {role}s: {who} at least {need:,} {spec.unit}, and a "
            f"comparison needs {MIN_PEERS + 1} ({role}s are not compared with other roles).")


def _compare(spec: Spec, role: str, g: pd.DataFrame, cfg, cols: tuple[str, str] | None = None,
             strata: pd.DataFrame | None = None, *, whole_pool: bool = False) -> pd.DataFrame:
    """Each rep of one role who does the work against the rest of them, on one metric (stratum
    by stratum when ``strata`` are given, see :func:`stratified_fisher`). ``whole_pool``: the
    pool of a proportion is every other rep with data, not only those who do the work (the
    stall tests, see the module notes). All reps of the role at once: one rep's figures are
    exactly those of the one-rep functions (:func:`fisher_less`, :func:`stratified_fisher`,
    :func:`peer_t_test`)."""
    num_col, den_col = cols or _NUM_DEN[spec.metric]
    need = _min_sample(spec.sample, cfg)
    if whole_pool:
        g = g[g[den_col].fillna(0) > 0].reset_index(drop=True)
        eligible = does_the_work(spec, g, cfg, cols)
    else:  # the reps who do the work are both the tested reps and the peers' pool
        g = g[does_the_work(spec, g, cfg, cols)].reset_index(drop=True)
        eligible = np.ones(len(g), dtype=bool)
    if eligible.sum() < MIN_PEERS + 1:
        return pd.DataFrame()
    k = g[num_col].fillna(0).to_numpy(dtype=float)
    n = g[den_col].to_numpy(dtype=float)
    x = g[spec.metric].to_numpy(dtype=float)
    mix = ""
    if spec.test == "proportion":
        idx = np.flatnonzero(eligible)
        K, N, mix = _strata_matrix(strata, g, spec.metric)
        peers = np.full(len(idx), len(g) - 1)
        if K is None:
            kr, nr = _rest_sums(k, idx), _rest_sums(n, idx)
            ki, ni = k[idx], n[idx]
            test_fn = fisher_less if spec.higher_is_better else fisher_greater
            pv = np.asarray(test_fn(ki, ni, kr, nr), dtype=float)
            peer, expected = kr / nr, np.full(len(idx), np.nan)
            test = np.full(len(idx), "Fisher exact, one-sided, vs the pooled rest of the peers", dtype=object)
            peer_k, peer_n = kr, nr
        else:
            # like with like: only strata where the rest of the peers have trials count
            KR, NR = _rest_sums(K, idx), _rest_sums(N, idx)
            Ki, Ni = K[idx], N[idx]
            inf = (Ni > 0) & (NR > 0)
            ki, ni = np.where(inf, Ki, 0.0).sum(axis=1), np.where(inf, Ni, 0.0).sum(axis=1)
            keep = (ni >= need) & (ni > 0)
            idx, inf, ki, ni, Ki, Ni, KR, NR, peers = (a[keep] for a in (idx, inf, ki, ni, Ki, Ni, KR, NR, peers))
            rate = np.divide(KR, NR, out=np.zeros_like(KR), where=inf)
            expected = np.where(inf, Ni * rate, 0.0).sum(axis=1)
            peer = expected / np.where(ni > 0, ni, np.nan)
            cases = [(Ki[j, inf[j]], Ni[j, inf[j]], KR[j, inf[j]], NR[j, inf[j]]) for j in range(len(idx))]
            pv = np.asarray(_stratified_fisher_many(cases, lower=spec.higher_is_better), dtype=float)
            test = np.array([f"exact test stratified by {mix} (Fisher within each of {m} strata), one-sided, vs the "
                             "rest of the peers on the same mix" for m in inf.sum(axis=1)], dtype=object)
            peer_k, peer_n = np.where(inf, KR, 0.0).sum(axis=1), np.where(inf, NR, 0.0).sum(axis=1)
        value = ki / ni
        lo, hi = (np.asarray(s.to_numpy(dtype=float, na_value=np.nan)) for s in wilson_interval(ki, ni))
    else:
        # the pool: the other reps who do the work and have a rate (a rep without one is not compared)
        pool = eligible & ~np.isnan(x)
        idx = np.flatnonzero(pool)
        if len(idx) - 1 < MIN_PEERS:
            return pd.DataFrame()
        t, df, peer = (np.empty(len(idx)) for _ in range(3))
        for j, i in enumerate(idx):
            others = x[pool & (np.arange(len(x)) != i)]
            t[j], df[j] = _t_statistic(x[i], others)
            peer[j] = float(others.mean())
        pv = stats.t.cdf(t, df) if spec.higher_is_better else stats.t.sf(t, df)
        peers = (df + 1).astype("int64")
        test = np.array([f"t test against the distribution of {int(d) + 1} peers (df {int(d)}), one-sided" for d in df],
                        dtype=object)
        ki, ni, value = k[idx], n[idx], x[idx]
        peer_k = _rest_sums(np.where(pool, k, 0.0), idx)
        peer_n = _rest_sums(np.where(pool, n, 0.0), idx)
        lo = hi = expected = np.full(len(idx), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(peer != 0, value / peer - 1, np.nan)
    m = len(idx)
    return pd.DataFrame({
        "rep_id": g["rep_id"].to_numpy(dtype=object)[idx], "name": g["name"].to_numpy(dtype=object)[idx],
        "team": g["team"].to_numpy(dtype=object)[idx], "role": role,
        "flag": spec.metric, "kind": "metric", "metric": spec.metric,
        "value": value, "peer_value": peer, "gap": gap,
        "numerator": ki, "denominator": ni, "peer_numerator": peer_k, "peer_denominator": peer_n,
        "value_low": lo, "value_high": hi, "test": test, "p_value": pv, "expected": expected,
        "peers": peers, "x_higher": np.full(m, spec.higher_is_better), "x_spec": [spec] * m, "x_mix": mix,
    }) if m else pd.DataFrame()  # fmt: skip


def _rest_sums(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """For each row i in ``idx``: the sum of the other rows of ``a`` (axis 0). Whole numbers
    (counts) as the total minus row i, exactly (see :func:`_whole`), so each rep costs
    O(strata), not O(peers x strata); any other numbers summed over the rest as they are."""
    if _whole(a):
        return a.sum(axis=0) - a[idx]
    return np.array([a[np.arange(len(a)) != i].sum(axis=0) for i in idx])


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
        f = _compare(spec, role, g, cfg, cols=("_num", "_den"), strata=strata, whole_pool=True)
        if not f.empty:
            f["flag"] = f"stalling_at_{step}"
            f["kind"] = "pattern"
            frames.append(f)
    return frames


def _patterns(out: pd.DataFrame, per_rep: pd.DataFrame | None, cfg) -> pd.DataFrame:
    """Relabel a flagged conversion metric as a pattern when the rep's volume is in the top
    quarter of the peers (the same role's reps who do that work: many calls / meetings, few
    results)."""
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
    doers = {spec.metric: does_the_work(spec, per_rep, cfg) for spec in SPECS if spec.metric in volume_of}
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
        peers = v[(roles == roles_out[i]) & (rep_ids != reps_out[i]) & working & doers[metric]]
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
    metric, role, mix, spec_of, rep = (out[c].to_numpy(dtype=object)
                                       for c in ("metric", "role", "x_mix", "x_spec", "rep_id"))
    value, peer, k, n = (out[c].to_numpy(dtype=float) for c in ("value", "peer_value", "numerator", "denominator"))
    m_rep, m_name = (out[c].to_numpy(dtype=object, copy=True) for c in ("mentor_rep_id", "mentor_name"))
    m_value, m_k, m_n = (out[c].to_numpy(dtype=float, copy=True) for c in ("mentor_value", "x_mentor_k", "x_mentor_n"))
    best: dict[tuple, Any] = {}
    for i in np.flatnonzero(flagged):
        key = (metric[i], role[i], bool(mix[i]))
        if key not in best:
            cand = out[eligible & (metric == key[0]) & (role == key[1])]
            b = _best_mentor(cand, spec_of[i], key[2])
            best[key] = None if b is None else out.index.get_loc(b)
        j = best[key]
        if j is None:
            continue
        if key[2]:
            mine, theirs = value[i] / peer[i], value[j] / peer[j]
        else:
            mine, theirs = value[i], value[j]
        better = theirs > mine if spec_of[i].higher_is_better else theirs < mine
        if not better:
            continue
        m_rep[i], m_name[i] = rep[j], names.get(rep[j], rep[j])
        m_value[i], m_k[i], m_n[i] = value[j], k[j], n[j]
    out["mentor_rep_id"], out["mentor_name"] = m_rep, m_name
    out["mentor_value"], out["x_mentor_k"], out["x_mentor_n"] = m_value, m_k, m_n
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


def _plain_evidence(r: Any, nb: Any, alpha: float) -> str:
    """A worth-a-look comparison in plain words: "won 1 of 10 closed deals (10%) against 61% for
    the other 5 AEs; not yet significant (q = 0.040)" (figures through ``nb``, the dataset's
    :class:`analysis.format.Numbers`)."""
    spec: Spec = r.x_spec

    def pct(x: float) -> str:
        return nb.percent(x, digits=0 if abs(x) >= 0.1 or x == 0 else 1)

    others = f"the other {r.role}" if r.peers == 1 else f"the other {nb.number(r.peers)} {r.role}s"
    if spec.test == "proportion":
        mine = spec.plain.format(k=nb.number(r.numerator), n=nb.number(r.denominator), value=pct(r.value))
        if r.x_mix:
            theirs = f"{pct(r.peer_value)} expected for {others} on the same mix of {_plural_mix(r.x_mix)}"
        else:
            theirs = f"{pct(r.peer_value)} for {others}"
    else:
        mine = spec.plain.format(value=nb.number(r.value, digits=1))
        theirs = f"a mean of {nb.number(r.peer_value, digits=1)} for {others}"
    digits = 3 if r.q_value < 0.1 else 2
    while digits < 6 and r.q_value - alpha < 10.0**-digits:  # 0.0103 is not written "0.010" beside alpha 0.01
        digits += 1
    return f"{mine} against {theirs}; not yet significant (q = {nb.number(r.q_value, digits=digits)})"


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
