"""The load cache: a second load of the same files skips the scans and gives the same figures;
any change to the files, the config or the code is a new load."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import analysis
from analysis.data import loading
from analysis.paths import SAMPLE_DATA

from .conftest import OPPS_CSV, REPS_CSV, write_tables


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's first two teams (deals, activities, leads, quotas of their reps): every table,
    at a fifth of the size, so each test here can load it cold several times."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("small") / "data"
    folder.mkdir()
    reps = pd.read_csv(SAMPLE_DATA / "reps.csv", dtype=str, keep_default_na=False)
    reps = reps[reps.team.isin(sorted(reps.team.unique())[:2])]
    keep = set(reps.rep_id)
    reps.to_csv(folder / "reps.csv", index=False)
    for name, column in (("opportunities", "owner_id"), ("leads", "owner_id"), ("quotas", "owner"),
                         ("pulse", "rep_id")):
        frame = pd.read_csv(SAMPLE_DATA / f"{name}.csv", dtype=str, keep_default_na=False)
        frame[frame[column].isin(keep | set(reps.team))].to_csv(folder / f"{name}.csv", index=False)
    deals = set(pd.read_csv(folder / "opportunities.csv", dtype=str).opportunity_id)
    acts = pd.read_parquet(SAMPLE_DATA / "activities.parquet")
    acts[acts.rep_id.isin(keep)].to_parquet(folder / "activities.parquet", index=False)
    history = pd.read_parquet(SAMPLE_DATA / "stage_history.parquet")
    history[history.opportunity_id.isin(deals)].to_parquet(folder / "stage_history.parquet", index=False)
    for name in ("accounts", "spend", "subscriptions"):
        shutil.copy(SAMPLE_DATA / f"{name}.csv", folder / f"{name}.csv")
    shutil.copy(SAMPLE_DATA / "workbench.yml", folder / "workbench.yml")
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("WORKBENCH_CACHE", str(folder))
    return folder


def _no_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("scanned although the load cache knew")

    monkeypatch.setattr(loading, "_value_maps", refuse)
    monkeypatch.setattr(loading, "_snapshot", refuse)


def test_a_second_load_reads_the_cache_and_gives_the_same_figures(cache: Path, small_sample: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "sample"
    shutil.copytree(small_sample, data)
    first = analysis.load(data)
    ids = ["revenue", "win_rate", "calls", "positive_call_rate", "avg_call_minutes", "sales_cycle_days"]
    expected = analysis.metrics(first, ids, by="team", grain="quarter")
    assert len(list((cache / "load").glob("*.pickle"))) == 1
    with monkeypatch.context() as m:
        _no_scans(m)
        second = analysis.load(data)
        got = analysis.metrics(second, ids, by="team", grain="quarter")
    assert got.equals(expected)
    assert second.snapshot == first.snapshot and second.row_counts() == first.row_counts()
    assert second.duplicates == first.duplicates and second.fx_missing == first.fx_missing
    assert [rt.maps for rt in second.raw.values()] == [rt.maps for rt in first.raw.values()]


def test_a_changed_file_is_loaded_afresh(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=OPPS_CSV)
    before = analysis.load(data)
    assert before.raw["opportunities"].facts["status"]["values"] == {"won", "lost", "open"}
    # the same size, written within the same tick of the clock: the content tells them apart
    path = data / "opportunities.csv"
    stat = path.stat()
    path.write_text(path.read_text().replace(",won,", ",WON,"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    after = analysis.load(data)
    assert after.raw["opportunities"].maps["status"] == {"WON": "won"}
    assert len(list((cache / "load").glob("*.pickle"))) == 2


def test_a_changed_config_is_loaded_afresh(cache: Path, tmp_path: Path) -> None:
    data = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=OPPS_CSV)
    analysis.load(data)
    (data / "workbench.yml").write_text("stages:\n  - {name: Demo, step: closing}\n")
    ds = analysis.load(data)
    assert ds.raw["opportunities"].steps["Demo"] == "closing"
    assert len(list((cache / "load").glob("*.pickle"))) == 2


def test_an_unreadable_cache_is_no_cache(cache: Path, tmp_path: Path) -> None:
    data = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=OPPS_CSV)
    analysis.load(data)
    (entry,) = (cache / "load").glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    ds = analysis.load(data)
    assert ds.raw["opportunities"].facts["status"]["values"] == {"won", "lost", "open"}


def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_CACHE", "off")
    assert loading.cache_folder() is None
    data = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=OPPS_CSV)
    assert analysis.load(data)._cache is None
    monkeypatch.delenv("WORKBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert loading.cache_folder() == tmp_path / "xdg" / "sales-workbench"


def test_an_unwritable_cache_folder_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("WORKBENCH_CACHE", str(blocker / "cache"))  # under a file: cannot be made
    data = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=OPPS_CSV)
    ds = analysis.load(data)
    assert ds.raw["opportunities"].facts["status"]["values"] == {"won", "lost", "open"}


def test_derived_tables_and_cube_months_are_kept_and_reused(cache: Path, small_sample: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A quarter asked first keeps its three cube months on disk; a later load asking for every
    period computes only the other months, and every figure equals a run without any cache."""
    from analysis.data import timeline

    data = tmp_path / "sample"
    shutil.copytree(small_sample, data)
    ids = ["revenue", "deals_won", "calls", "meetings", "avg_call_minutes", "positive_call_rate", "sales_cycle_days"]
    first = analysis.load(data)
    quarter = analysis.metrics(first, ids, by="team", grain="quarter", periods=["2026-Q3"])
    months = sorted(p.name for p in first._cache.derived.joinpath("activity_cube").glob("*.parquet"))
    assert months == ["2026-07-01.parquet", "2026-08-01.parquet", "2026-09-01.parquet"]
    assert first._cache.derived.joinpath("opportunities.parquet").is_file()

    with monkeypatch.context() as m:
        m.setattr(timeline, "_deals", lambda ds: (_ for _ in ()).throw(AssertionError("recomputed the deals")))
        second = analysis.load(data)
        everything = analysis.metrics(second, ids, by="team", grain="quarter")
    assert len(list(second._cache.derived.joinpath("activity_cube").glob("*.parquet"))) > 3

    monkeypatch.setenv("WORKBENCH_CACHE", "off")
    fresh = analysis.load(data)
    assert analysis.metrics(fresh, ids, by="team", grain="quarter").equals(everything)
    assert analysis.metrics(fresh, ids, by="team", grain="quarter", periods=["2026-Q3"]).equals(quarter)


def test_a_run_keeps_reading_derived_tables_another_run_pruned(cache: Path, small_sample: Path, tmp_path: Path) -> None:
    data = tmp_path / "sample"
    shutil.copytree(small_sample, data)
    ids = ["revenue", "calls", "sales_cycle_days"]
    ds = analysis.load(data)
    before = analysis.metrics(ds, ids, by="team", grain="quarter")
    shutil.rmtree(ds._cache.derived)  # what pruning by another process does
    assert analysis.metrics(ds, ids, by="team", grain="quarter").equals(before)


def test_the_quality_report_of_the_day_is_kept(cache: Path, small_sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analysis.data import validation

    data = tmp_path / "sample"
    shutil.copytree(small_sample, data)
    first = analysis.load(data).quality(thorough=False)
    with monkeypatch.context() as m:
        m.setattr(validation, "check", lambda *a, **k: (_ for _ in ()).throw(AssertionError("checked again")))
        again = analysis.load(data).quality(thorough=False)
    assert again == first and again is not first
    # another day is checked again: its date rules compare with that day
    real = validation.check
    seen = []
    monkeypatch.setattr(validation, "check", lambda *a, **k: seen.append(1) or real(*a, **k))
    ds = analysis.load(data)
    ds._learned["today"] = "1999-01-01"
    ds.quality(thorough=False)
    assert seen == [1]


def test_small_results_are_kept_for_the_next_process_and_keyed_by_config(cache: Path, small_sample: Path,
                                                                         tmp_path: Path) -> None:
    data = tmp_path / "sample"
    shutil.copytree(small_sample, data)
    calls: list[str] = []

    def build(tag: str):
        calls.append(tag)
        return {"p50": 1.5, "tag": tag}

    first = analysis.load(data)
    assert not first.has_kept("replay", ("2026-Q1", 2000))
    assert first.kept("replay", ("2026-Q1", 2000), lambda: build("a")) == {"p50": 1.5, "tag": "a"}
    assert first.has_kept("replay", ("2026-Q1", 2000))
    second = analysis.load(data)  # another process would load it the same way
    assert second.has_kept("replay", ("2026-Q1", 2000))
    assert second.kept("replay", ("2026-Q1", 2000), lambda: build("b")) == {"p50": 1.5, "tag": "a"}
    assert second.kept("replay", ("2026-Q2", 2000), lambda: build("c"))["tag"] == "c"  # another key
    (data / "workbench.yml").write_text((data / "workbench.yml").read_text() + "\nstalled_quantile: 0.8\n")
    third = analysis.load(data)  # another config: computed anew
    assert third.kept("replay", ("2026-Q1", 2000), lambda: build("d"))["tag"] == "d"
    assert calls == ["a", "c", "d"]
