"""Tests of the synthetic sample generator (analysis.sample) and of the committed data/sample."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.data import sample as S
from analysis.data.config import load_config, parse_config
from analysis.data.schema import STEPS, TABLES

SMALL = dict(reps=12, months=6, seed=3, end=dt.date(2026, 6, 30))
#: a year, so that renewals, expansions and a leaver all occur
YEAR = dict(reps=12, months=12, seed=5, end=dt.date(2026, 9, 30))
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def small() -> dict[str, pd.DataFrame]:
    return S.sample_tables(**SMALL)


@pytest.fixture(scope="module")
def year() -> dict[str, pd.DataFrame]:
    return S.sample_tables(**YEAR)


@pytest.fixture(scope="module", params=["small", "year"])
def data(request, small, year):
    return {"small": (small, SMALL), "year": (year, YEAR)}[request.param]


def _read(path: Path, name: str) -> pd.DataFrame:
    """Read a written table back with the canonical types (no loader dependency)."""
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
        for c in TABLES[name].columns:
            if c.type in ("date", "timestamp"):
                df[c.name] = pd.to_datetime(df[c.name]).astype("datetime64[us]")
        return df
    text_cols = {c.name: str for c in TABLES[name].columns if c.type in ("id", "string", "category")}
    df = pd.read_csv(path, dtype=text_cols, keep_default_na=False, na_values=[""])
    for c in TABLES[name].columns:
        if c.type == "timestamp":
            df[c.name] = pd.to_datetime(df[c.name], format="%Y-%m-%dT%H:%M:%S").astype("datetime64[us]")
        elif c.type == "date":
            df[c.name] = pd.to_datetime(df[c.name], format="%Y-%m-%d").astype("datetime64[us]")
        elif c.type in ("money", "number"):
            df[c.name] = df[c.name].astype(float)
    return df


def _read_dir(path: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name in S.SAMPLE_TABLES:
        files = [path / f"{name}{suffix}" for suffix in (".parquet", ".csv") if (path / f"{name}{suffix}").exists()]
        assert len(files) == 1, f"{name}: expected exactly one file, found {files}"
        out[name] = _read(files[0], name)
    return out


def _assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert set(a) == set(b)
    for name in a:
        pd.testing.assert_frame_equal(
            a[name].reset_index(drop=True), b[name].reset_index(drop=True), check_dtype=False, obj=name
        )


# -- shape and schema ---------------------------------------------------------------------------------


def test_builds_every_table_with_schema_columns_in_order(small):
    assert set(S.SAMPLE_TABLES) == set(TABLES) - {"fx_rates"}
    assert list(small) == list(S.SAMPLE_TABLES)
    for name, df in small.items():
        assert list(df.columns) == TABLES[name].column_names, name
        assert len(df) > 0, name


def test_allowed_values_types_and_ranges(data):
    tables, _ = data
    for name, df in tables.items():
        for c in TABLES[name].columns:
            col = df[c.name]
            vals = col.dropna()
            if c.allowed:
                assert set(vals) <= set(c.allowed), (name, c.name, set(vals) - set(c.allowed))
            if c.type in ("timestamp", "date"):
                assert pd.api.types.is_datetime64_dtype(col), (name, c.name, col.dtype)
                if c.type == "date":
                    assert (vals == vals.dt.normalize()).all(), (name, c.name)
                else:
                    assert (vals == vals.dt.floor("s")).all(), (name, c.name)
            elif c.type in ("money", "number"):
                assert pd.api.types.is_float_dtype(col), (name, c.name, col.dtype)
                if c.type == "money":
                    assert np.allclose(vals, vals.round(2)), (name, c.name)
            else:
                assert pd.api.types.is_string_dtype(col) and all(isinstance(v, str) for v in vals[:1000]), (name, c.name)
            if c.nonnegative:
                assert (vals >= 0).all(), (name, c.name)
            if c.min_value is not None:
                assert (vals >= c.min_value).all(), (name, c.name)
            if c.max_value is not None:
                assert (vals <= c.max_value).all(), (name, c.name)


def test_required_columns_are_filled_and_keys_unique(data):
    tables, _ = data
    for name, df in tables.items():
        t = TABLES[name]
        for col in t.required_columns:
            assert df[col].notna().all(), (name, col)
        if t.key:
            assert df[t.key].is_unique, (name, t.key)


def test_ids_are_prefixed_zero_padded_strings(small):
    patterns = {
        ("reps", "rep_id"): r"R\d{4}",
        ("accounts", "account_id"): r"A\d{5,}",
        ("leads", "lead_id"): r"L\d{6,}",
        ("opportunities", "opportunity_id"): r"O\d{6,}",
        ("activities", "activity_id"): r"ACT\d{8,}",
        ("subscriptions", "contract_id"): r"C\d{5,}",
    }
    for (table, col), pattern in patterns.items():
        assert small[table][col].str.fullmatch(pattern).all(), (table, col)
    assert small["reps"]["rep_id"].iloc[0] == "R0001"


def test_every_foreign_key_resolves(data):
    tables, _ = data
    checked = 0
    for name, df in tables.items():
        for col in TABLES[name].foreign_keys:
            ref_table, ref_col = col.references.split(".")
            targets = set(tables[ref_table][ref_col])
            dangling = set(df[col.name].dropna()) - targets
            assert not dangling, f"{name}.{col.name} -> {col.references}: {sorted(dangling)[:5]}"
            checked += 1
    assert checked >= 10
    quotas, reps = tables["quotas"], tables["reps"]
    assert set(quotas["owner"]) <= set(reps["rep_id"]) | set(reps["team"])


def test_ordered_pairs_and_nothing_after_end(data):
    tables, args = data
    end = pd.Timestamp(args["end"])
    last_instant = end + pd.Timedelta(days=1)
    for name, df in tables.items():
        t = TABLES[name]
        for early, late in t.ordered:
            both = df[[early, late]].dropna()
            a, b = both[early], both[late]
            if TABLES[name].column(late).type == "date":
                a = a.dt.normalize()
            assert (a <= b).all(), (name, early, late)
        for col in t.not_future:
            assert (df[col].dropna() < last_instant).all(), (name, col)
    # dates after the end only for open deals' expected close and contract end dates
    opp = tables["opportunities"]
    assert (opp.loc[opp["status"] != "open", "close_date"] <= end).all()
    assert (tables["subscriptions"]["start_date"] <= end).all()
    assert (tables["reps"]["hire_date"] <= end).all() and (tables["reps"]["end_date"].dropna() <= end).all()
    for name in ("quotas", "spend"):
        assert (tables[name]["period_end"] <= end).all(), name


def test_timestamps_fall_in_working_hours(small):
    cfg = parse_config(S.sample_config(end=SMALL["end"], months=SMALL["months"]))
    holidays = {pd.Timestamp(h) for h in cfg.holidays}
    for name, df in small.items():
        for c in TABLES[name].columns:
            if c.type != "timestamp":
                continue
            ts = df[c.name].dropna()
            assert (ts.dt.day_of_week < 5).all(), (name, c.name)
            assert ts.dt.hour.between(8, 17).all(), (name, c.name)
            in_config = ts.dt.normalize() >= pd.Timestamp(S._window_start(SMALL["end"], SMALL["months"]))
            assert not ts[in_config].dt.normalize().isin(holidays).any(), (name, c.name)


# -- consistency ---------------------------------------------------------------------------------------


def test_stage_history_agrees_with_deals(data, tmp_path):
    tables, args = data
    S.write_sample(tmp_path, **args, format="parquet")
    cfg = load_config(data_dir=tmp_path)
    opp = tables["opportunities"].set_index("opportunity_id")
    hist = tables["stage_history"]
    assert set(hist["opportunity_id"]) == set(opp.index)
    assert hist.groupby("opportunity_id")["entered_at"].apply(lambda s: s.is_monotonic_increasing and s.is_unique).all()
    last = hist.groupby("opportunity_id").tail(1).set_index("opportunity_id")
    first = hist.groupby("opportunity_id").head(1).set_index("opportunity_id")
    assert (last["stage"] == opp.loc[last.index, "stage"]).all()
    assert (first["entered_at"] == opp.loc[first.index, "created_at"]).all()
    status_stage = {"won": "Closed Won", "lost": "Closed Lost"}
    closed = opp[opp["status"] != "open"]
    assert (closed["stage"] == closed["status"].map(status_stage)).all()
    assert (last.loc[closed.index, "entered_at"].dt.normalize() == closed["close_date"]).all()
    open_ = opp[opp["status"] == "open"]
    assert not open_["stage"].isin(["Closed Won", "Closed Lost"]).any()
    steps = {name: cfg.step_of(name) for name in hist["stage"].unique()}
    assert None not in steps.values(), steps
    assert {steps[s] for s in opp["stage"]} <= set(STEPS) | {"won", "lost"}
    assert {s: cfg.step_of(s) for s in ("Closed Won", "Closed Lost")} == {"Closed Won": "won", "Closed Lost": "lost"}


def test_closed_deals_close_on_or_after_creation(data):
    tables, _ = data
    opp = tables["opportunities"]
    assert (opp["close_date"] >= opp["created_at"].dt.normalize()).all()
    assert opp["close_date"].notna().all()


def test_activities_within_rep_tenure(data):
    tables, _ = data
    reps = tables["reps"].set_index("rep_id")
    act = tables["activities"]
    day = act["occurred_at"].dt.normalize()
    assert (day >= act["rep_id"].map(reps["hire_date"])).all()
    end = act["rep_id"].map(reps["end_date"])
    assert (day[end.notna()] <= end[end.notna()]).all()
    window_start = pd.Timestamp(S._window_start(data[1]["end"], data[1]["months"]))
    assert (act["occurred_at"] >= window_start).all()
    assert (tables["leads"]["created_at"] >= window_start).all()


def test_leaver_and_reassignment(year):
    reps, opp, act, leads = year["reps"], year["opportunities"], year["activities"], year["leads"]
    left = reps[reps["end_date"].notna()]
    assert len(left) >= 1
    assert (reps["hire_date"] > pd.Timestamp(S._window_start(YEAR["end"], YEAR["months"]))).any()
    for rep_id, end in zip(left["rep_id"], left["end_date"]):
        mine = opp[opp["owner_id"] == rep_id]
        assert (mine["status"] != "open").all(), "open deals of a rep who left are reassigned"
        assert (mine["close_date"] <= end).all()
        assert (act.loc[act["rep_id"] == rep_id, "occurred_at"] < end + pd.Timedelta(days=1)).all()
        assert not ((leads["owner_id"] == rep_id) & leads["status"].isin(["open", "qualified"])).any()
    # the documented leaver: first AE of the first team, with deals in the window
    first_ae = reps[(reps["team"] == reps["team"].iloc[0]) & (reps["role"] == "AE")].iloc[0]
    assert pd.notna(first_ae["end_date"])
    assert (opp["owner_id"] == first_ae["rep_id"]).sum() > 0


def test_leads_consistent_with_conversion(data):
    tables, _ = data
    leads, opp = tables["leads"], tables["opportunities"].set_index("opportunity_id")
    conv = leads["status"] == "converted"
    assert conv.any() and (~conv).any()
    assert leads.loc[conv, ["opportunity_id", "converted_at"]].notna().all().all()
    assert leads.loc[~conv, ["opportunity_id", "converted_at"]].isna().all().all()
    assert leads.loc[conv, "first_response_at"].notna().all()
    assert leads["first_response_at"].isna().any(), "some leads never got a response"
    assert leads["opportunity_id"].dropna().is_unique
    linked = opp.loc[leads.loc[conv, "opportunity_id"]]
    assert (linked["created_at"].values == leads.loc[conv, "converted_at"].values).all()
    assert (linked["account_id"].values == leads.loc[conv, "account_id"].values).all()
    assert set(leads["source"]) == {"inbound", "outbound", "referral", "event", "partner"}


def test_renewals_expansions_and_subscriptions(year):
    opp, subs = year["opportunities"], year["subscriptions"]
    assert set(opp["deal_type"]) == {"new_business", "expansion", "renewal"}
    won = opp[opp["status"] == "won"]
    first_won = won.groupby("account_id")["close_date"].min()
    existing = opp[opp["deal_type"] != "new_business"]
    assert (existing["created_at"] > existing["account_id"].map(first_won)).all()
    renewed = subs[subs["renewed_from"].notna()]
    assert len(renewed) > 0
    prev = subs.set_index("contract_id").loc[renewed["renewed_from"]]
    assert (prev["end_date"].values + np.timedelta64(1, "D") == renewed["start_date"].values).all()
    assert (prev["account_id"].values == renewed["account_id"].values).all()
    assert set(subs["account_id"]) <= set(won["account_id"])
    lost_renewals = opp[(opp["deal_type"] == "renewal") & (opp["status"] == "lost")]
    assert len(lost_renewals) > 0, "some customers churn"


def test_quotas_pulse_spend(year):
    q, reps, pulse, spend = year["quotas"], year["reps"], year["pulse"], year["spend"]
    role = q["owner"].map(reps.set_index("rep_id")["role"])
    assert set(q.loc[role.isin(["AE", "AM"]), "metric"]) == {"revenue", "deals_won"}
    assert set(q.loc[role == "SDR", "metric"]) == {"calls", "meetings"}
    team_q = q[q["owner"].isin(reps["team"])]
    assert set(team_q["metric"]) == {"revenue"} and set(team_q["owner"]) == set(reps["team"])
    per_rep = q[role.notna() & (q["metric"] == "revenue")].assign(team=lambda d: d["owner"].map(reps.set_index("rep_id")["team"]))
    sums = per_rep.groupby(["team", "period_start"])["target"].sum()
    assert np.allclose(team_q.set_index(["owner", "period_start"])["target"].sort_index(), sums.sort_index())
    assert ((q["period_end"] - q["period_start"]).dt.days.between(89, 91)).all()
    assert (pulse["score"] == pulse["score"].round()).all() and pulse["rep_id"].isna().any()
    assert set(spend["category"]) == {"sales", "marketing"} and len(spend) == 2 * YEAR["months"]


def test_realism(year, small):
    for tables in (year, small):
        opp = tables["opportunities"]
        closed = opp[opp["status"] != "open"]
        win_rate = (closed["status"] == "won").mean()
        assert 0.15 <= win_rate <= 0.45, win_rate
        lost = opp[opp["status"] == "lost"]
        assert lost["loss_reason"].notna().mean() > 0.8 and lost["loss_reason"].isna().any()
        assert opp.loc[opp["status"] != "lost", "loss_reason"].isna().all()
    opp, hist = year["opportunities"], year["stage_history"]
    accounts = year["accounts"].set_index("account_id")
    # cycle length grows with the segment
    won = opp[(opp["status"] == "won") & (opp["deal_type"] == "new_business")]
    cycle = (won["close_date"] - won["created_at"].dt.normalize()).dt.days
    by_seg = cycle.groupby(won["account_id"].map(accounts["segment"])).median()
    assert by_seg["SMB"] < by_seg["Mid-Market"] < by_seg["Enterprise"]
    # Demo -> Negotiation is the biggest leak of the forward steps
    order = {name: i for i, name in enumerate(S.STAGE_NAMES[:6])}
    reached = hist.assign(pos=hist["stage"].map(order)).groupby("opportunity_id")["pos"].max()
    conv = {k: (reached[reached >= k] > k).mean() for k in range(5)}
    assert min(conv, key=conv.get) == order["Demo"], conv
    assert opp["product"].nunique() in (3, 4) and set(accounts["segment"]) == {"SMB", "Mid-Market", "Enterprise"}
    # the transitions include skips, backward moves and re-opened lost deals
    nxt = hist.groupby("opportunity_id")["stage"].shift(-1)
    pairs = set(zip(hist["stage"], nxt))
    assert ("Contract Sent", "Negotiation") in pairs and ("Qualification", "Demo") in pairs
    assert any(a == "Closed Lost" and isinstance(b, str) for a, b in pairs)
    assert "Nurture" in set(hist["stage"])


# -- determinism and the writers ----------------------------------------------------------------------


def test_deterministic_frames(small):
    _assert_same(small, S.sample_tables(**SMALL))
    other = S.sample_tables(**{**SMALL, "seed": SMALL["seed"] + 1})
    assert not small["opportunities"].equals(other["opportunities"])


@pytest.mark.parametrize("fmt", ["csv", "parquet", "mixed"])
def test_written_files_are_byte_identical_and_equal_the_frames(small, tmp_path, fmt):
    a = S.write_sample(tmp_path / "a", **SMALL, format=fmt)
    b = S.write_sample(tmp_path / "b", **SMALL, format=fmt)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    assert "workbench.yml" in files and len(files) == len(S.SAMPLE_TABLES) + 1
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    _assert_same(_read_dir(a), small)


def test_chunked_parquet_write_equals_in_memory(monkeypatch, tmp_path):
    args = dict(reps=24, months=6, seed=11, end=dt.date(2026, 3, 31))
    memory = S.sample_tables(**args)
    monkeypatch.setattr(S, "CHUNK_TEAMS", 1)  # three teams -> three chunks
    lines = []
    monkeypatch.setattr(S.sys, "stderr", type("E", (), {"write": lambda self, s: lines.append(s), "flush": lambda self: None})())
    S.write_sample(tmp_path, **args, format="parquet", progress=True)
    assert sum("teams" in line for line in lines) == 3
    _assert_same(_read_dir(tmp_path), memory)


def test_csv_text_format(tmp_path):
    S.write_sample(tmp_path, **SMALL, format="csv")
    head = (tmp_path / "opportunities.csv").read_text().splitlines()
    assert head[0] == ",".join(TABLES["opportunities"].column_names)
    row = dict(zip(head[0].split(","), head[1].split(",")))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row["created_at"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", row["close_date"])
    assert re.fullmatch(r"O0+1", row["opportunity_id"])


def test_switching_format_removes_stale_files(tmp_path):
    S.write_sample(tmp_path, **SMALL, format="csv")
    (tmp_path / "notes.txt").write_text("keep me")
    S.write_sample(tmp_path, **SMALL, format="mixed")
    assert (tmp_path / "activities.parquet").exists() and not (tmp_path / "activities.csv").exists()
    assert (tmp_path / "reps.csv").exists() and not (tmp_path / "reps.parquet").exists()
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert not list(tmp_path.glob("*.tmp"))


def test_workbench_yml(tmp_path):
    S.write_sample(tmp_path, **SMALL)
    cfg = load_config(data_dir=tmp_path)
    assert cfg.timezone == "America/New_York" and cfg.currency == "USD" and cfg.fiscal_year_start_month == 1
    assert cfg.as_of == SMALL["end"]
    assert [s.step for s in cfg.stages] == list(STEPS)
    assert cfg.stage_order()[:6] == list(S.STAGE_NAMES[:6])
    assert cfg.scorecard.weights["opportunities_created"] == 15
    assert cfg.holidays and all(h.weekday() < 5 for h in cfg.holidays)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="format"):
        S._formats("xlsx")
    with pytest.raises(ValueError, match="reps"):
        S.sample_tables(reps=3)
    with pytest.raises(ValueError, match="months"):
        S.sample_tables(months=0)
    with pytest.raises(ValueError, match="end"):
        S.sample_tables(end="yesterday")


def test_default_end():
    assert S.default_end(dt.date(2026, 11, 25)) == dt.date(2026, 9, 30)
    assert S.default_end(dt.date(2026, 10, 1)) == dt.date(2026, 9, 30)
    assert S.default_end(dt.date(2026, 9, 30)) == dt.date(2026, 6, 30)
    assert S.default_end(dt.date(2026, 1, 5)) == dt.date(2025, 12, 31)


# -- the committed sample ------------------------------------------------------------------------------


def test_committed_sample_matches_the_generator():
    """data/sample is exactly write_sample(**SAMPLE_ARGS): regenerate it when the generator changes
    (command in data/sample/README.md)."""
    assert SAMPLE_DIR.is_dir(), "data/sample is missing"
    args = {k: v for k, v in S.SAMPLE_ARGS.items() if k != "format"}
    expected = S.sample_tables(**args)
    formats = S._formats(S.SAMPLE_ARGS["format"])
    for name, fmt in formats.items():
        assert (SAMPLE_DIR / f"{name}.{fmt}").exists(), f"data/sample/{name}.{fmt} is missing"
    _assert_same(_read_dir(SAMPLE_DIR), expected)
    cfg = load_config(data_dir=SAMPLE_DIR)
    assert cfg == parse_config(S.sample_config(end=args["end"], months=args["months"]))
    readme = (SAMPLE_DIR / "README.md").read_text()
    for name, df in expected.items():
        assert re.search(rf"\|\s*{name}\s*\|\s*{len(df):,}\s*\|", readme), f"README row count of {name}"
