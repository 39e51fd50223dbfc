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
# A review replays the simulation on the past periods the time series is backtested on (each
# replay rebuilds a past pipeline: ~0.4 CPU-s per quarter on the sample, ~3.5 at 5,000 reps; kept
# on disk by Dataset.kept, so only the first review of new data replays), so one headline forecast
# can be chosen by accuracy on the same periods.


def _outlook(r: Review) -> Outlook:
    """The next period's outlook, computed once per review."""
    memo = r.__dict__.setdefault("_memo", {})
    if "outlook" not in memo:
        memo["outlook"] = period_outlook(r.ds, r.period.next(), simulations=REVIEW_SIMULATIONS,
                                          max_cells=REVIEW_MAX_CELLS, replay=True)
    return memo["outlook"]


def _names_public(r: Review) -> bool:
    return r.scope != "rep" or bool(r.ds.config.leaderboards_public)


# -- forecast --------------------------------------------------------------------------------------


def forecast_section(r: Review) -> list[Any]:
    """The next period: one headline forecast, chosen by backtest accuracy, then the evidence.

    Company scope: the headline (the forecast with the lower error on the same replayed past
    periods) with its calibration, a sentence for each other forecast that disagrees beyond the
    intervals, a table of every forecast with its accuracy, then each method's chart and table as
    supporting evidence. Team and rep scope: their own pipeline and simulated outcome.
    """
    if not r.ds.has("opportunities"):
        return [note_block("No opportunities table: no forecast.")]
    o = _outlook(r)
    nxt = o.period.label
    out: list[Any] = []
    if r.scope == "company":
        h = o.headline
        chosen = h.chosen.method if h is not None else None
        lead = 1 + len(h.disagreements) if h is not None else 0
        if h is not None:
            out.append(paragraph(h.text))
            out.append(headline_table(r, h.table))
            out.append(heading_block("Supporting evidence"))
        out += [paragraph(s) for s in o.sentences[lead:]]
        if o.series is not None:
            best = o.series.best
            bt = o.series.backtest[o.series.backtest.model == o.series.winner]
            history = o.series.history.tail(8)
            role = "the headline" if chosen == "time_series" else "supporting evidence"
            value = r.money(best[best.period == nxt].forecast.iloc[0])
            out.append(charts.show(
                figures.forecast_chart(history, best[best.period == nxt], backtest=bt, numbers=r.numbers,
                                       title=f"Time-series forecast for {nxt}: {value} ({role})"),
                caption=(f"Bars: revenue per {r.period.grain}; filled point and line: the {o.series.winner.replace('_', ' ')} "
                         f"model's forecast with its {o.series.interval:.0%} interval; hollow points: its one-step-ahead "
                         "forecasts of past periods (the backtest).")))
            acc = o.series.accuracy.assign(model=lambda d: d.model.str.replace("_", " "))
            out.append(html_table(acc[["model", "periods", "mape", "bias", "is_winner"]].rename(columns={
                "model": "Model", "periods": "Backtest periods", "mape": "MAPE", "bias": "Bias", "is_winner": "Winner"}),
                formats={"MAPE": r.cell("percent", 1), "Bias": lambda v: r.numbers.percent(v, signed=True)},
                caption="Rolling backtest of the time series: each past period forecast from the periods before it. "
                        "MAPE: mean absolute percentage error; bias: mean signed error (positive: over-forecast)."))
        out += _pipeline_table(r, o)
        if o.simulation is not None:
            s = o.simulation.summary.iloc[0]
            role = "the headline" if chosen == "simulation" else "supporting evidence"
            out.append(charts.show(figures.outcome_chart(
                o.simulation.totals, title=f"Simulated revenue for {nxt}: P50 {r.money(s.p50)} ({role})",
                target=s.target, p10=s.p10, p50=s.p50, p90=s.p90, numbers=r.numbers),
                caption="Each simulation closes every open deal with its learned probability and adds new business "
                        "at the recent run rate, brought to the period's season."))
            if o.replay is not None and len(o.replay):
                rp = o.replay[["period", "actual", "p10", "p50", "p90", "inside"]]
                out.append(html_table(rp.rename(columns={"period": "Period", "actual": "Actual", "p10": "P10", "p50": "P50",
                                                         "p90": "P90", "inside": "Inside P10-P90"}),
                                      formats={c: r.cell("money") for c in ("Actual", "P10", "P50", "P90")},
                                      caption="The simulation replayed on past periods, each as of the day before it "
                                              "started: its calibration."))
            teams = o.simulation.groups.get("team")
            if teams is not None and teams.target.notna().any():
                t = teams[teams.target.notna()].sort_values(["p_reach_target", "team"], ascending=[False, True])
                out += long_table(r, t[["team", "target", "p10", "p50", "p90", "p_reach_target"]].rename(columns={
                    "team": "Team", "target": "Quota", "p10": "P10", "p50": "P50", "p90": "P90",
                    "p_reach_target": "Chance of quota"}), name="team-quota-chances",
                    what="teams", formats={**{c: r.cell("money") for c in ("Quota", "P10", "P50", "P90")},
                                           "Chance of quota": r.cell("percent")},
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
            text = (f"Simulated revenue of {r.subject} for {nxt} (as of {o.as_of}): P50 {r.money(x.p50)} "
                    f"(P10 {r.money(x.p10)}, P90 {r.money(x.p90)})")
            if pd.notna(x.target):
                text += f"; {x.p_reach_target:.0%} chance of reaching the {r.money(x.target)} quota"
            out.insert(0, paragraph(text + "."))
    if not out:
        out.append(note_block(f"No open deals or history for {r.scope_label} to forecast {nxt}."))
    return out


def headline_table(r: Review, table: pd.DataFrame) -> Any:
    """Every forecast of the next period beside its accuracy on the same replayed periods."""
    n = r.numbers

    def interval(x: pd.Series) -> str:
        if pd.isna(x.low) or pd.isna(x.high):
            return "none"
        return f"{n.money(x.low)} to {n.money(x.high)}"

    def error(x: pd.Series) -> str:
        return n.percent(x.mape) if int(x.backtest_periods or 0) and pd.notna(x.mape) else "not backtested"

    def inside(x: pd.Series) -> str:
        if not int(x.with_interval or 0):
            return "n/a (no interval)" if pd.isna(x.low) else "not backtested"
        return f"{int(x.inside)} of {int(x.with_interval)}"

    frame = pd.DataFrame({
        "Forecast": table.label.str.capitalize(),
        "Revenue": table.forecast.map(n.money),
        "80% interval": [interval(x) for _, x in table.iterrows()],
        "Periods replayed": table.backtest_periods.fillna(0).astype(int),
        "Average error (MAPE)": [error(x) for _, x in table.iterrows()],
        "Actual inside the interval": [inside(x) for _, x in table.iterrows()],
        "Headline": table.is_headline.map({True: "yes", False: ""}),
        "What it counts": table.note,
    })
    return html_table(frame, caption="Every forecast of the period with its accuracy on the same past periods; the "
                                     "headline is the one with the lower average error")


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
                   formats={"Amount": r.cell("money"), "Weighted": r.cell("money")},
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
    out: list[Any] = [paragraph(f"{whose} below works back from {source} of {r.money(target)} for {nxt.label}.")]
    out += plan_view.plan_view(frame)
    return out


def _next_target(r: Review, nxt: Any) -> tuple[float | None, str]:
    """The next period's revenue quota, else the headline forecast (the company's, labelled)."""
    from analysis.semantic.engine import metrics

    got = metrics(r.ds, ["revenue_target"], grain=nxt.grain, periods=[nxt], catalog=r.catalog)
    if len(got) and pd.notna(got.revenue_target.iloc[0]) and float(got.revenue_target.iloc[0]) > 0:
        return float(got.revenue_target.iloc[0]), "the revenue quota"
    o = _outlook(r)  # the company's outlook in every scope: a team's or rep's plan is the company plan
    if o.headline is not None and pd.notna(o.headline.chosen.value):
        return float(o.headline.chosen.value), f"the headline forecast ({o.headline.chosen.label}; no quota is set)"
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
    out.append(paragraph("; ".join(f"{x['name']} leads the {x.role}s with {r.numbers.number(x.score)} points" for _, x in top.iterrows()) + "."))
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
    note = f"the first and last {layout.top} of each role of {r.numbers.number(len(board))} reps" if shown is not board else ""
    out.append(charts.show(figures.leaderboard_chart(shown, note=note, numbers=r.numbers)))
    table = board[["rank", "name", "team", "role", "score", "rank_change", "percentile"]].rename(columns={
        "rank": "Rank", "name": "Rep", "team": "Team", "role": "Role", "score": "Score",
        "rank_change": "Change", "percentile": "Percentile"})
    scores = board.assign(score=board.score.astype(float)).groupby("role", dropna=False).score
    summary = pd.DataFrame({"Reps": scores.size(), "Top score": scores.max(), "Median score": scores.median(),
                            "Lowest score": scores.min()}).rename_axis("Role").reset_index()
    summary[["Top score", "Median score", "Lowest score"]] = summary[["Top score", "Median score", "Lowest score"]].map(
        r.cell("number"))
    out += long_table(r, table, name="leaderboard", what="reps",
                      formats={"Score": r.cell("number"), "Percentile": "{:.0f}", "Change": "{:+d}"},
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
    out: list[Any] = [paragraph(f"Score {r.numbers.number(x.score)} points: rank {int(x['rank'])} of {int(x.peers)} {x.role}s "
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
            formats={"Actual": r.cell("number"), "Benchmark": r.cell("number"), "Attainment": "{:.0%}",
                     "Points per unit": "{:g}", "Points": r.cell("number")},
            caption=f"{title} scorecard, {r.period.label}"))
    if _names_public(r):
        peers = board[board.role == x.role]
        k = r.ds.config.review.top
        if len(peers) > r.ds.config.review.list_all_up_to:  # the rep's neighbourhood in the ranking
            near = peers[(peers["rank"] - x["rank"]).abs() <= k // 2]
            near.attrs = board.attrs
            note = f"your neighbours among {r.numbers.number(len(peers))} {x.role}s"
            peers = near
        else:
            note = ""
        out.append(charts.show(figures.leaderboard_chart(peers, note=note, numbers=r.numbers)))
    return out


# -- coaching --------------------------------------------------------------------------------------


def coaching_section(r: Review) -> list[Any]:
    """Coaching notes: reps significantly below their peers, patterns, and a mentor for each;
    then the reps worth a look (a large gap not yet significant, no mentor)."""
    from analysis.steering import coaching

    notes = coaching.coaching_notes(r.ds, r.period, name_mentors=_names_public(r))
    flags, look = notes.flags, notes.worth_a_look
    if r.scope == "team":
        flags, look = flags[flags.team == r.scope_value], look[look.team == r.scope_value]
    elif r.scope == "rep":
        flags, look = flags[flags.rep_id == r.scope_value], look[look.rep_id == r.scope_value]
    nb, layout, cfg = r.numbers, r.ds.config.review, r.ds.config.coaching

    def listed(frame: pd.DataFrame, name: str, what: str) -> list[Any]:
        sentences = frame.sentence.tolist()
        long = len(sentences) > layout.list_all_up_to
        if long:
            sentences = sentences[: 2 * layout.top]
        items = "".join(f"<li>{charts.esc(s)}</li>" for s in sentences)
        blocks: list[Any] = [charts.HTMLBlock(f'<ul class="coaching">{items}</ul>', text=" ".join(sentences))]
        if long:
            blocks.append(note_block(f"The first {nb.number(len(sentences))} of {nb.number(len(frame))} {what}, in the "
                                     "order above."))
            blocks.append(r.attach(name, frame, what=what))
        return blocks

    out: list[Any] = []
    if flags.empty:
        who = "No rep is" if r.scope != "rep" else f"{r.rep_name(r.scope_value)} is not"
        out.append(paragraph(f"{who} significantly below peers of the same role on any coached measure in "
                             f"{r.period.label}" + (" (small samples are never flagged)." if r.scope != "rep" else ".")))
        if r.scope != "rep":  # measures a role has too few reps doing to compare (the summary says it otherwise)
            out += [note_block(s) for s in flags.attrs.get("not_compared") or []]
    else:
        if r.scope != "rep":
            out.append(paragraph(coaching.coaching_summary(flags, names_up_to=layout.list_all_up_to)))
        out += listed(flags, "coaching-notes", "coaching notes")
    if not look.empty:
        n_reps = look.rep_id.nunique()
        lead = ("Worth a look, not yet significant" if r.scope == "rep" else
                f"Worth a look: {nb.number(n_reps)} {'rep has' if n_reps == 1 else 'reps have'} a large gap against "
                "the peers of the same role that is not yet significant")
        out.append(paragraph(f"{lead} (at most {nb.percent(cfg.worth_a_look_ratio, digits=0)} of the peers' value; "
                             f"adjusted p above {nb.number(cfg.alpha, digits=2)} and at most "
                             f"{nb.number(cfg.worth_a_look_q, digits=2)}). No mentor is suggested: the gap may still be "
                             "noise, so watch it before acting on it."))
        out += listed(look, "coaching-worth-a-look", "worth-a-look notes")
    if not flags.empty or not look.empty:
        out.append(note_block("A flag needs a gap of at least a quarter against the other reps of the same role who do "
                              "that work (calls, leads or closed deals) that is significant after correcting for every "
                              "comparison made (Benjamini-Hochberg), and enough deals or activities to be sure of it."))
    return out


# -- experiments -----------------------------------------------------------------------------------


def experiments_section(r: Review) -> list[Any]:
    """Configured experiments with their verdicts (nothing when none are configured)."""
    if not r.ds.config.experiments:
        return []
    from analysis.steering import experiments

    out: list[Any] = [heading_block("Experiments" if r.scope == "company" else "Experiments (company-wide)")]
    if r.scope != "company":
        out.append(note_block(f"These experiments are measured on every rep's data, not only {r.subject}'s."))
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
    out.append(html_table(table, formats={"n (A)": r.cell("count"), "n (B)": r.cell("count"), "p": "{:.3f}"},
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
    team = None
    if r.scope != "company":
        team = r.scope_value if r.scope == "team" else r.reps.set_index("rep_id").team.get(r.scope_value)
        frame = frame[(frame.level == "company") | (frame.team == team)]
    small = frame[(frame.level == "team") & (frame.responses < MIN_PULSE_ANSWERS)]
    shown = frame.drop(small.index)
    sentence = enps.enps_sentence(shown, r.period.label)
    if r.scope == "company":
        out: list[Any] = [paragraph(sentence)]
    else:  # the company's figure, labelled as such, then the scope's own team
        out = [paragraph("Company-wide: " + sentence)]
        mine = frame[frame.level == "team"]
        if team is None or mine.empty:
            out.append(paragraph(f"No pulse answers from {r.subject}'s team in {r.period.label}."))
        elif int(mine.responses.iloc[0]) < MIN_PULSE_ANSWERS:
            out.append(paragraph(f"Team {team} gave {int(mine.responses.iloc[0])} pulse answers in {r.period.label}, "
                                 f"fewer than {MIN_PULSE_ANSWERS}: its eNPS is not shown, to keep answers anonymous."))
        else:
            x = mine.iloc[0]
            out.append(paragraph(f"Team {team}: eNPS {x.enps:+.0f} from {r.numbers.number(x.responses)} answers "
                                 f"(95% interval {x.enps_low:+.0f} to {x.enps_high:+.0f})."))
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
