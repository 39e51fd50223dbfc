"""Review sections that steer rather than measure: forecast, plan, scorecards, coaching,
experiments and eNPS (SPEC sections 6 and 7).

Same contract as :mod:`analysis.review`: each function takes a :class:`~analysis.review.Review`
and returns display objects (narrative first, then a chart or table); a section whose data is
missing says so in one line. Privacy: a rep-scope review shows the rep's own scorecard, rank and
coaching notes and never names another rep (a suggested mentor is described, not named), unless
the config sets ``leaderboards_public``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.format import money
from analysis.reports import charts, figures, plan_view
from analysis.reports.review import Review, ends, heading_block, html_table, long_table, note_block, paragraph
from analysis.steering import forecast as fc
from analysis.steering import plan as planning
from analysis.steering import scorecard as sc
from analysis.steering.outlook import Outlook, period_outlook

#: Simulations per outcome in a review (the quantiles move by well under 1% from 10,000), and the
#: cap on simulations x open deals that keeps a 100,000-deal pipeline to about 1,000 runs.
REVIEW_SIMULATIONS = 4_000
REVIEW_MAX_CELLS = 100_000_000
# A review does not replay the simulation on past periods (each replay rebuilds a past pipeline:
# seconds on the sample, minutes at scale); ``python -m analysis forecast`` does and prints how
# often the actual fell inside P10-P90. The review shows the time series' backtest.


def _outlook(r: Review) -> Outlook:
    """The next period's outlook, computed once per review."""
    memo = r.__dict__.setdefault("_memo", {})
    if "outlook" not in memo:
        memo["outlook"] = period_outlook(r.ds, r.period.next(), simulations=REVIEW_SIMULATIONS,
                                          max_cells=REVIEW_MAX_CELLS, replay=False)
    return memo["outlook"]


def _names_public(r: Review) -> bool:
    return r.scope != "rep" or bool(r.ds.config.leaderboards_public)


# -- forecast --------------------------------------------------------------------------------------


def forecast_section(r: Review) -> list[Any]:
    """The next period: time-series forecast with its backtest, weighted pipeline, simulated outcome."""
    if not r.ds.has("opportunities"):
        return [note_block("No opportunities table: no forecast.")]
    o = _outlook(r)
    nxt = o.period.label
    cur = r.ds.config.currency
    out: list[Any] = []
    if r.scope == "company":
        out += [paragraph(s) for s in o.sentences]
        if o.series is not None:
            best = o.series.best
            bt = o.series.backtest[o.series.backtest.model == o.series.winner]
            history = o.series.history.tail(8)
            out.append(charts.show(
                figures.forecast_chart(history, best[best.period == nxt], backtest=bt,
                                       title=f"Revenue forecast for {nxt}: {money(best[best.period == nxt].forecast.iloc[0], cur)}"),
                caption=(f"Bars: revenue per {r.period.grain}; filled point and line: the {o.series.winner.replace('_', ' ')} "
                         f"model's forecast with its {o.series.interval:.0%} interval; hollow points: its one-step-ahead "
                         "forecasts of past periods (the backtest).")))
            acc = o.series.accuracy.assign(model=lambda d: d.model.str.replace("_", " "))
            out.append(html_table(acc[["model", "periods", "mape", "bias", "is_winner"]].rename(columns={
                "model": "Model", "periods": "Backtest periods", "mape": "MAPE", "bias": "Bias", "is_winner": "Winner"}),
                formats={"MAPE": "{:.1%}", "Bias": "{:+.1%}"},
                caption="Rolling backtest: each past period forecast from the periods before it. MAPE: mean absolute "
                        "percentage error; bias: mean signed error (positive: over-forecast)."))
        out += _pipeline_table(r, o)
        if o.simulation is not None:
            s = o.simulation.summary.iloc[0]
            out.append(charts.show(figures.outcome_chart(
                o.simulation.totals, title=f"Simulated revenue for {nxt}: P50 {money(s.p50, cur)}",
                target=s.target, p10=s.p10, p50=s.p50, p90=s.p90),
                caption="Each simulation closes every open deal with its learned probability and adds new business "
                        "drawn from the recent run rate. The forecast command (python -m analysis forecast) replays it on past periods to "
                        "show how often the actual fell between P10 and P90."))
            if o.replay is not None and len(o.replay):
                rp = o.replay[["period", "actual", "p10", "p50", "p90", "inside"]]
                out.append(html_table(rp.rename(columns={"period": "Period", "actual": "Actual", "inside": "Inside P10-P90"}),
                                  formats={c: "{:,.0f}" for c in ("Actual", "p10", "p50", "p90")},
                                  caption="The simulation replayed on past periods, each as of the day before it started."))
            teams = o.simulation.groups.get("team")
            if teams is not None and teams.target.notna().any():
                t = teams[teams.target.notna()].sort_values(["p_reach_target", "team"], ascending=[False, True])
                out += long_table(r, t[["team", "target", "p10", "p50", "p90", "p_reach_target"]].rename(columns={
                    "team": "Team", "target": "Quota", "p_reach_target": "Chance of quota"}), name="team-quota-chances",
                    what="teams", formats={"Quota": "{:,.0f}", "p10": "{:,.0f}", "p50": "{:,.0f}", "p90": "{:,.0f}",
                                           "Chance of quota": "{:.0%}"},
                    caption=f"Chance of reaching each team's revenue quota in {nxt}, most likely first")
        return out
    # team or rep: their own pipeline and simulated outcome
    dim, value = ("team", r.scope_value) if r.scope == "team" else ("rep_id", r.scope_value)
    out += _pipeline_table(r, o)
    if o.simulation is not None:
        g = o.simulation.groups.get(dim)
        row = g[g[dim] == value] if g is not None else pd.DataFrame()
        if len(row):
            x = row.iloc[0]
            text = (f"Simulated revenue of {r.scope_label} for {nxt} (as of {o.as_of}): P50 {money(x.p50, cur)} "
                    f"(P10 {money(x.p10, cur)}, P90 {money(x.p90, cur)})")
            if pd.notna(x.target):
                text += f"; {x.p_reach_target:.0%} chance of reaching the {money(x.target, cur)} quota"
            out.insert(0, paragraph(text + "."))
    if not out:
        out.append(note_block(f"No open deals or history for {r.scope_label} to forecast {nxt}."))
    return out


def _pipeline_table(r: Review, o: Outlook) -> list[Any]:
    nxt = o.period.label
    if r.scope == "company":
        pipe = o.pipeline
    else:
        deals = o.deals[(o.deals.team == r.scope_value) if r.scope == "team" else (o.deals.owner_id == r.scope_value)]
        pipe = fc.weighted_pipeline(r.ds, as_of=o.as_of, by=["team"], grain=o.period.grain, deals=deals)
        pipe = pipe[pipe.close_period == nxt].groupby("category", sort=False)[["deals", "amount", "weighted"]].sum()
        pipe = pipe.reset_index()
    if pipe.empty:
        return [note_block(f"No open deals are expected to close in {nxt}.")]
    table = pipe[["category", "deals", "amount", "weighted"]].assign(
        category=lambda d: d.category.map({"commit": "Commit", "best_case": "Best case", "pipeline": "Pipeline"}))
    th = r.ds.config.forecast
    return [html_table(table.rename(columns={"category": "Category", "deals": "Deals", "amount": "Amount",
                                         "weighted": "Weighted"}),
                   formats={"Amount": "{:,.0f}", "Weighted": "{:,.0f}"},
                   caption=(f"Open deals expected to close in {nxt}, as of {o.as_of}: commit when the step's learned "
                            f"win probability is at least {th.commit_probability:.0%}, best case at least "
                            f"{th.best_case_probability:.0%}; weighted = amount x probability."))]


# -- plan ------------------------------------------------------------------------------------------


def plan_section(r: Review) -> list[Any]:
    """What the next period needs: the North Star plan from its revenue target."""
    nxt = r.period.next()
    target, source = _next_target(r, nxt)
    if target is None or not target > 0:
        return [note_block(f"No revenue target or forecast for {nxt.label}: no plan.")]
    try:
        frame = planning.plan(r.ds, target, nxt)
    except planning.PlanError as err:
        return [note_block(f"No plan for {nxt.label}: {err}")]
    whose = "The company plan" if r.scope != "company" else "The plan"
    out: list[Any] = [paragraph(f"{whose} below works back from {source} of {money(target, r.ds.config.currency)} for {nxt.label}.")]
    out += plan_view.plan_view(frame)
    return out


def _next_target(r: Review, nxt: Any) -> tuple[float | None, str]:
    from analysis.semantic.engine import metrics

    got = metrics(r.ds, ["revenue_target"], grain=nxt.grain, periods=[nxt], catalog=r.catalog)
    if len(got) and pd.notna(got.revenue_target.iloc[0]) and float(got.revenue_target.iloc[0]) > 0:
        return float(got.revenue_target.iloc[0]), "the revenue quota"
    o = _outlook(r)
    if o.series is not None:
        best = o.series.best
        row = best[best.period == nxt.label]
        if len(row):
            return float(row.forecast.iloc[0]), "the time-series forecast (no quota is set)"
    return None, ""


# -- scorecards ------------------------------------------------------------------------------------


def scorecard_section(r: Review) -> list[Any]:
    """Leaderboard (company and team reviews) or the rep's own scorecard (rep reviews)."""
    board = sc.leaderboard(r.ds, r.period, catalog=r.catalog)
    if board.empty:
        return [note_block(f"No rep to score in {r.period.label}.")]
    if r.scope == "rep":
        return _own_scorecard(r, board)
    if r.scope == "team":
        board = board[board.team == r.scope_value]
    out: list[Any] = []
    top = board.sort_values(["rank", "score"], ascending=[True, False]).groupby("role", sort=False).head(1)
    out.append(paragraph("; ".join(f"{x['name']} leads the {x.role}s with {x.score:,.0f} points" for _, x in top.iterrows()) + "."))
    moved = board[board.rank_change.notna()]
    if len(moved):
        up = moved.loc[moved.rank_change.astype(int).idxmax()]
        if int(up.rank_change) > 0:
            out.append(paragraph(f"Biggest climb: {up['name']} ({up.role}), up {int(up.rank_change)} places to "
                          f"{int(up['rank'])} of {int(up.peers)}."))
    layout = r.ds.config.review
    shown = board
    if len(board) > layout.list_all_up_to:
        shown = ends(board.sort_values(["role", "rank", "name"], kind="stable"), layout.top, by="role")
        shown.attrs = board.attrs
    note = f"the first and last {layout.top} of each role of {len(board):,} reps" if shown is not board else ""
    out.append(charts.show(figures.leaderboard_chart(shown, note=note)))
    table = board[["rank", "name", "team", "role", "score", "rank_change", "percentile"]].rename(columns={
        "rank": "Rank", "name": "Rep", "team": "Team", "role": "Role", "score": "Score",
        "rank_change": "Change", "percentile": "Percentile"})
    scores = board.assign(score=board.score.astype(float)).groupby("role", dropna=False).score
    summary = pd.DataFrame({"Reps": scores.size(), "Top score": scores.max(), "Median score": scores.median(),
                            "Lowest score": scores.min()}).rename_axis("Role").reset_index()
    summary[["Top score", "Median score", "Lowest score"]] = summary[["Top score", "Median score", "Lowest score"]].map(
        "{:,.0f}".format)
    out += long_table(r, table, name="leaderboard", what="reps",
                      formats={"Score": "{:,.0f}", "Percentile": "{:.0f}", "Change": "{:+d}"},
                      caption=f"Scores are points per unit (config weights) summed over the scorecard's metrics; "
                              f"ranks are within each role; change since {board.attrs.get('previous_period')}",
                      summary=summary, summary_caption="Scores of every ranked rep, by role")
    return out


def _own_scorecard(r: Review, board: pd.DataFrame) -> list[Any]:
    me = board[board.rep_id == r.scope_value]
    if me.empty:
        return [note_block(f"{r.scope_label} is not scored in {r.period.label} (no activity or deals).")]
    x = me.iloc[0]
    change = ("" if pd.isna(x.rank_change) else
              f", {'up' if x.rank_change > 0 else 'down'} {abs(int(x.rank_change))} since {board.attrs.get('previous_period')}"
              if int(x.rank_change) != 0 else f", unchanged since {board.attrs.get('previous_period')}")
    out: list[Any] = [paragraph(f"Score {x.score:,.0f} points: rank {int(x['rank'])} of {int(x.peers)} {x.role}s "
                         f"(percentile {x.percentile:.0f}){change}.")]
    card = sc.scorecard(r.ds, r.period, catalog=r.catalog)
    card = card[card.rep_id == r.scope_value]
    for section, title in (("activity", "Activity"), ("objectives", "Objectives")):
        part = card[card.section == section]
        if part.empty:
            continue
        out.append(html_table(part[["label", "actual", "benchmark", "attainment", "weight", "points"]].rename(columns={
            "label": title, "actual": "Actual", "benchmark": "Benchmark", "attainment": "Attainment",
            "weight": "Points per unit", "points": "Points"}),
            formats={"Actual": "{:,.0f}", "Benchmark": "{:,.0f}", "Attainment": "{:.0%}", "Points per unit": "{:g}",
                     "Points": "{:,.0f}"},
            caption=f"{title} scorecard, {r.period.label}"))
    if _names_public(r):
        peers = board[board.role == x.role]
        k = r.ds.config.review.top
        if len(peers) > r.ds.config.review.list_all_up_to:  # the rep's neighbourhood in the ranking
            near = peers[(peers["rank"] - x["rank"]).abs() <= k // 2]
            near.attrs = board.attrs
            note = f"your neighbours among {len(peers):,} {x.role}s"
            peers = near
        else:
            note = ""
        out.append(charts.show(figures.leaderboard_chart(peers, note=note)))
    return out


# -- coaching --------------------------------------------------------------------------------------


def coaching_section(r: Review) -> list[Any]:
    """Coaching notes: reps significantly below their peers, patterns, and a mentor for each."""
    from analysis.steering import coaching

    flags = coaching.coaching_flags(r.ds, r.period, name_mentors=_names_public(r))
    if r.scope == "team":
        flags = flags[flags.team == r.scope_value]
    elif r.scope == "rep":
        flags = flags[flags.rep_id == r.scope_value]
    if flags.empty:
        who = "No rep" if r.scope != "rep" else r.rep_name(r.scope_value)
        return [paragraph(f"{who} is significantly below peers of the same role on any coached measure in {r.period.label}"
                   + (" (small samples are never flagged)." if r.scope != "rep" else "."))]
    out: list[Any] = [paragraph(coaching.coaching_summary(flags))] if r.scope != "rep" else []
    sentences = flags.sentence.tolist()
    layout = r.ds.config.review
    long = len(sentences) > layout.list_all_up_to
    if long:
        sentences = sentences[: 2 * layout.top]
    items = "".join(f"<li>{charts.esc(s)}</li>" for s in sentences)
    out.append(charts.HTMLBlock(f'<ul class="coaching">{items}</ul>', text=" ".join(sentences)))
    if long:
        out.append(note_block(f"The first {len(sentences)} of {len(flags):,} coaching notes, in the order above."))
        out.append(r.attach("coaching-notes", flags, what="coaching notes"))
    out.append(note_block("A flag needs a gap of at least a quarter against the other reps of the same role that is "
                     "significant after correcting for the number of comparisons (Benjamini-Hochberg), and enough "
                     "deals or activities to be sure of it."))
    return out


# -- experiments -----------------------------------------------------------------------------------


def experiments_section(r: Review) -> list[Any]:
    """Configured experiments with their verdicts (nothing when none are configured)."""
    if not r.ds.config.experiments:
        return []
    from analysis.steering import experiments

    out: list[Any] = [heading_block("Experiments")]
    frame = experiments.experiments(r.ds)
    for _, x in frame.iterrows():
        out.append(paragraph(f"{x['name']}: {x.verdict}"))
    def fmt(metric: Any, v: Any) -> str:
        return r.catalog.get(metric).fmt(v) if metric in r.catalog else f"{v:,.4g}"

    table = pd.DataFrame({
        "Experiment": frame["name"], "Metric": frame.get("label", frame["metric"]),
        "Design": frame["design"].astype(str).str.replace("_", "/"),
        "n (A)": frame.get("n_a"), "n (B)": frame.get("n_b"),
        "A": [fmt(m, v) for m, v in zip(frame["metric"], frame.get("value_a", pd.Series(dtype=float)))],
        "B": [fmt(m, v) for m, v in zip(frame["metric"], frame.get("value_b", pd.Series(dtype=float)))],
        "p": frame.get("p_value"), "Test": frame.get("test"),
    })
    out.append(html_table(table, formats={"n (A)": "{:,.0f}", "n (B)": "{:,.0f}", "p": "{:.3f}"},
                      caption="A is before the change (or the first group), B after it (or the second group); the "
                              "sentences above give the difference with its 95% interval. Experiments are listed in "
                              "workbench.yml (experiments)."))
    return out


# -- eNPS ------------------------------------------------------------------------------------------

#: Fewest pulse answers a team needs before its eNPS is shown (anonymity).
MIN_PULSE_ANSWERS = 5


def enps_section(r: Review) -> list[Any]:
    """Employee NPS of the period: company and teams, promoters / passives / detractors."""
    if not r.ds.has("pulse"):
        return [note_block("No pulse table: eNPS is not available.")]
    from analysis.steering import enps

    frame = enps.enps(r.ds, period=r.period, grain=r.period.grain, by="team")
    frame = frame[frame.period == r.period.label]
    if frame.empty or int(frame.responses.max()) == 0:
        return [note_block(f"No pulse answers in {r.period.label}.")]
    if r.scope != "company":
        team = r.scope_value if r.scope == "team" else r.reps.set_index("rep_id").team.get(r.scope_value)
        frame = frame[(frame.level == "company") | (frame.team == team)]
    small = frame[(frame.level == "team") & (frame.responses < MIN_PULSE_ANSWERS)]
    shown = frame.drop(small.index)
    out: list[Any] = [paragraph(enps.enps_sentence(shown, r.period.label))]
    table = shown[["team", "responses", "promoters", "passives", "detractors", "enps", "enps_low", "enps_high"]]
    if len(table) > r.ds.config.review.list_all_up_to:  # the company first, then teams by eNPS
        table = pd.concat([table[shown.level == "company"],
                           table[shown.level != "company"].sort_values(["enps", "team"], ascending=[False, True])])
    out += long_table(r, table.rename(columns={
        "team": "Team", "responses": "Answers", "promoters": "Promoters (9-10)", "passives": "Passives (7-8)",
        "detractors": "Detractors (0-6)", "enps": "eNPS", "enps_low": "95% low", "enps_high": "95% high"}),
        name="enps-by-team", what="rows", formats={"eNPS": "{:+.0f}", "95% low": "{:+.0f}", "95% high": "{:+.0f}"},
        caption=f"eNPS = % promoters - % detractors of the pulse answers in {r.period.label}; teams with fewer than "
                f"{MIN_PULSE_ANSWERS} answers are not shown, to keep answers anonymous")
    return out
