"""The engine against an independent plain-pandas reading of the SPEC definitions.

A fresh synthetic dataset (a seed nobody tuned for) is written to files; the reference reads
the files with pandas alone (no analysis.load) and computes each definition of SPEC section 4
by team and quarter. Every figure must agree with ``analysis.metrics`` and with the CLI's CSV.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.data.sample import write_sample

IDS = ["revenue", "deals_won", "deals_lost", "win_rate", "avg_deal_size", "sales_cycle_days",
       "opportunities_created", "pipeline_created", "leads_created", "lead_conversion_rate",
       "calls", "emails", "meetings", "demos", "positive_call_rate", "email_reply_rate"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("ref"), reps=14, months=9, seed=2024, end="2026-06-30",
                        format="mixed")


def quarter(series: pd.Series) -> pd.Series:
    return series.dt.year.astype("Int64").astype(str) + "-Q" + series.dt.quarter.astype("Int64").astype(str)


def reference(folder: Path) -> pd.DataFrame:
    read = lambda name: pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False, na_values=[""])  # noqa: E731
    reps = read("reps")[["rep_id", "team"]]
    o = read("opportunities").merge(reps, left_on="owner_id", right_on="rep_id", how="left")
    o["amount"] = o.amount.astype(float)
    o["created"] = pd.to_datetime(o.created_at)
    o["closed"] = pd.to_datetime(o.close_date)
    o["cq"] = quarter(o.closed)
    o["oq"] = quarter(o.created)
    won, lost = o[o.status == "won"], o[o.status == "lost"]
    g = lambda f, by: f.groupby(["team", by])  # noqa: E731
    out = pd.DataFrame({
        "revenue": g(won, "cq").amount.sum(),
        "deals_won": g(won, "cq").size(),
        "deals_lost": g(lost, "cq").size(),
        "sales_cycle_days": g(won.assign(d=(won.closed - won.created.dt.normalize()).dt.days), "cq").d.mean(),
    })
    out.index.names = ["team", "period"]
    created = pd.DataFrame({"opportunities_created": g(o, "oq").size(), "pipeline_created": g(o, "oq").amount.sum()})
    created.index.names = ["team", "period"]
    leads = read("leads").merge(reps, left_on="owner_id", right_on="rep_id", how="left")
    leads["q"] = quarter(pd.to_datetime(leads.created_at))
    leads["conv"] = (leads.status == "converted") | leads.opportunity_id.notna() | leads.converted_at.notna()
    lf = pd.DataFrame({"leads_created": g(leads, "q").size(), "leads_converted": g(leads, "q").conv.sum()})
    lf.index.names = ["team", "period"]
    a = pd.read_parquet(folder / "activities.parquet").merge(reps, on="rep_id", how="left")
    a["q"] = quarter(pd.to_datetime(a.occurred_at))
    t = a.type
    connected = (t == "call") & a.outcome.isin(["connected", "positive", "negative", "meeting_booked"])
    af = pd.DataFrame({
        "calls": g(a[t == "call"], "q").size(),
        "emails": g(a[t == "email"], "q").size(),
        "meetings": g(a[t == "meeting"], "q").size(),
        "demos": g(a[t == "demo"], "q").size(),
        "_conn": g(a[connected], "q").size(),
        "_pos": g(a[(t == "call") & a.outcome.isin(["positive", "meeting_booked"])], "q").size(),
        "_out": g(a[(t == "email") & (a.direction == "outbound")], "q").size(),
        "_rep": g(a[(t == "email") & (a.direction == "outbound") & (a.outcome == "replied")], "q").size(),
    })
    af.index.names = ["team", "period"]
    ref = out.join(created, how="outer").join(lf, how="outer").join(af, how="outer")
    counts = ["deals_won", "deals_lost", "revenue", "opportunities_created", "pipeline_created", "leads_created",
              "leads_converted", "calls", "emails", "meetings", "demos", "_conn", "_pos", "_out", "_rep"]
    ref[counts] = ref[counts].fillna(0)
    closed = ref.deals_won + ref.deals_lost
    ref["win_rate"] = (ref.deals_won / closed).where(closed > 0)
    ref["avg_deal_size"] = (ref.revenue / ref.deals_won).where(ref.deals_won > 0)
    ref["lead_conversion_rate"] = (ref.leads_converted / ref.leads_created).where(ref.leads_created > 0)
    ref["positive_call_rate"] = (ref._pos / ref._conn).where(ref._conn > 0)
    ref["email_reply_rate"] = (ref._rep / ref._out).where(ref._out > 0)
    return ref[IDS]


def check_equal(engine: pd.DataFrame, ref: pd.DataFrame, periods: list[str]) -> None:
    ref = ref[ref.index.get_level_values("period").isin(periods)]
    engine = engine[engine.team.notna()].set_index(["team", "period"])[IDS]
    joined = engine.add_suffix("_engine").join(ref.add_suffix("_ref"), how="outer")
    for mid in IDS:
        e = joined[f"{mid}_engine"].astype(float).fillna(0 if mid in ("revenue",) else np.nan)
        r = joined[f"{mid}_ref"].astype(float)
        if mid not in ("win_rate", "avg_deal_size", "sales_cycle_days", "lead_conversion_rate",
                       "positive_call_rate", "email_reply_rate"):
            r = r.fillna(0)
            e = e.fillna(0)
        both_na = e.isna() & r.isna()
        close = np.isclose(e, r, rtol=1e-9, atol=0.005)
        bad = joined.index[~(both_na | close)]
        assert len(bad) == 0, f"{mid} differs at {list(bad)[:3]}: engine {list(e[bad])[:3]} vs ref {list(r[bad])[:3]}"


def test_engine_matches_the_pandas_reference(folder: Path):
    ds = analysis.load(folder)
    periods = ["2025-Q4", "2026-Q1", "2026-Q2"]
    engine = analysis.metrics(ds, IDS, by="team", grain="quarter", periods=periods)
    check_equal(engine, reference(folder), periods)


def test_cli_csv_matches_the_pandas_reference(folder: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "metrics", str(folder), "--metrics", ",".join(IDS), "--by", "team",
         "--grain", "quarter", "--period", "2026-Q1,2026-Q2", "--format", "csv"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    engine = pd.read_csv(io.StringIO(proc.stdout), dtype={"team": str})
    assert list(engine.columns[:2]) == ["team", "period"]
    assert {"win_rate_numerator", "win_rate_denominator", "win_rate_low", "win_rate_high"} <= set(engine.columns)
    check_equal(engine, reference(folder), ["2026-Q1", "2026-Q2"])
