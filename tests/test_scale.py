"""A review of a 5,000-rep company reads well: bounded charts, shortened lists, full tables attached.

The dataset is the sample's deals, activities and leads spread over 5,000 reps in 625 teams (125
copies of each sample rep and team), so it has the shape of a large company at the sample's
size: every list of reps or teams is long, while a review of it stays quick enough for the suite.
The speed at the real scale (1M deals, 50M activities) is measured by ``make bench``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.paths import NOTEBOOKS, ROOT
from analysis.reports import charts, render

SAMPLE = ROOT / "data" / "sample"
COPIES = 125  # 40 sample reps x 125 = 5,000


def _read(name: str) -> pd.DataFrame:
    csv, parquet = SAMPLE / f"{name}.csv", SAMPLE / f"{name}.parquet"
    return pd.read_csv(csv, dtype=str, keep_default_na=False) if csv.exists() else pd.read_parquet(parquet)


def _copy_of(ids: pd.Series) -> pd.Series:
    """Which copy (0..124) a record goes to: from the number in its id, so a deal and its
    activities and history land with the same copy of their rep."""
    return ids.astype(str).str.extract(r"(\d+)", expand=False).fillna("0").astype(int) % COPIES


def _rep(rep_ids: pd.Series, copy: pd.Series) -> pd.Series:
    known = rep_ids.astype(str).str.fullmatch(r"R\d{4}")
    return rep_ids.where(~known, rep_ids.astype(str) + "-" + copy.astype(str).str.zfill(3))


def _team(teams: pd.Series, copy: pd.Series) -> pd.Series:
    has = teams.astype(str).str.len() > 0
    return teams.where(~has, teams.astype(str) + " " + copy.astype(str).str.zfill(3))


def write_big_company(folder: Path) -> Path:
    """The sample spread over 5,000 reps (see the module docstring), written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    reps = _read("reps")
    copies = pd.concat([reps.assign(_copy=c) for c in range(COPIES)], ignore_index=True)
    copy = copies.pop("_copy")
    copies["rep_id"] = _rep(copies.rep_id, copy)
    copies["manager_id"] = _rep(copies.manager_id, copy)
    copies["name"] = copies.name + " " + copy.astype(str).str.zfill(3)
    copies["team"] = _team(copies.team, copy)
    copies.to_csv(folder / "reps.csv", index=False)

    opps = _read("opportunities")
    opps["owner_id"] = _rep(opps.owner_id, _copy_of(opps.opportunity_id))
    opps.to_csv(folder / "opportunities.csv", index=False)
    acts = _read("activities")
    acts = acts[pd.to_datetime(acts.occurred_at) >= "2026-01-01"]  # what the 2026-Q3 review reads: Q2 and Q3
    by = acts.opportunity_id.where(acts.opportunity_id.notna() & (acts.opportunity_id.astype(str) != ""),
                                   acts.activity_id)
    acts["rep_id"] = _rep(acts.rep_id, _copy_of(by))
    acts.to_parquet(folder / "activities.parquet", index=False)
    leads = _read("leads")
    leads["owner_id"] = _rep(leads.owner_id, _copy_of(leads.opportunity_id.where(leads.opportunity_id != "",
                                                                                  leads.lead_id)))
    leads.to_csv(folder / "leads.csv", index=False)
    quotas = _read("quotas")
    rows = []
    for c in range(COPIES):  # every copy of a rep (or team) gets its quota
        q = quotas.copy()
        c_ = pd.Series(c, index=q.index)
        is_rep = q.owner.str.fullmatch(r"R\d{4}")
        q["owner"] = _rep(q.owner, c_).where(is_rep, _team(q.owner, c_))
        rows.append(q)
    pd.concat(rows, ignore_index=True).to_csv(folder / "quotas.csv", index=False)
    pulse = _read("pulse")
    c_ = _copy_of(pd.Series(range(len(pulse)), index=pulse.index).astype(str))
    pulse["rep_id"], pulse["team"] = _rep(pulse.rep_id, c_), _team(pulse.team, c_)
    pulse.to_csv(folder / "pulse.csv", index=False)
    for name in ("accounts", "spend", "subscriptions"):
        shutil.copy(SAMPLE / f"{name}.csv", folder / f"{name}.csv")
    shutil.copy(SAMPLE / "stage_history.parquet", folder / "stage_history.parquet")
    config = yaml.safe_load((SAMPLE / "workbench.yml").read_text(encoding="utf-8"))
    config.pop("experiments", None)  # they name the sample's teams
    (folder / "workbench.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def big_company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_big_company(tmp_path_factory.mktemp("big") / "data")


def section_calls() -> list[str]:
    """The section expressions of the review notebook, in order (``review.show(<expr>)``)."""
    nb = json.loads((NOTEBOOKS / "review.ipynb").read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        first = "".join(cell["source"]).strip().split("\n")[0].split("  #")[0]
        m = re.fullmatch(r"review\.show\((.*)\)", first)
        if cell["cell_type"] == "code" and m:
            out.append(m.group(1))
    return out


def run_sections(r) -> list:
    from analysis.reports import review, steering_review

    blocks = []
    for expr in section_calls():
        blocks += eval(expr, {"review": review, "steering": steering_review, "r": r})  # noqa: S307 - our notebook
    return blocks


@pytest.fixture(scope="module")
def company_review(big_company: Path, tmp_path_factory: pytest.TempPathFactory):
    from analysis.reports import review

    out = tmp_path_factory.mktemp("attached")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(render.ATTACH_DIR_ENV, str(out))
        mp.setenv(render.ATTACH_STEM_ENV, "company")
        r = review.setup(cadence="quarterly", data=str(big_company))
        blocks = run_sections(r)
    return r, blocks, out


@pytest.mark.slow
def test_a_5000_rep_review_bounds_its_charts_and_attaches_full_tables(company_review) -> None:
    """One test (one build of the review) for the company review of 5,000 reps."""
    r, blocks, out = company_review
    assert len(r.reps) == 5000 and r.reps.rep_id.is_unique
    assert r.reps.team.nunique() > r.ds.config.review.list_all_up_to

    # every chart within the mark bound; the leaderboard: the first and last 10 of each role
    drawn = [b for b in blocks if getattr(b, "rows", None) is not None]
    assert len(drawn) >= 8
    assert max(b.rows for b in drawn) <= charts.MAX_MARKS
    board_chart = next(b for b in drawn if "Leaderboard" in b.text)
    assert board_chart.rows <= 2 * 10 * 4

    # long lists show their ends; the whole list is attached and linked
    layout = r.ds.config.review
    for block in blocks:
        body = getattr(block, "html", "")
        if "<table" in body and "Metric catalog" not in block.text:  # the glossary does not grow with reps
            assert body.count("<tr>") <= layout.list_all_up_to + 1, block.text
    expected = {"leaderboard", "attainment", "outcomes-by-rep", "outcomes-by-team", "activity-by-team"}
    assert expected <= set(r.tables)
    for name, frame in r.tables.items():
        path = out / f"company.{name}.csv"
        assert path.exists(), name
        written = pd.read_csv(path, dtype=str, keep_default_na=False)
        assert len(written) == len(frame) and list(written.columns) == [str(c) for c in frame.columns]
        assert any(f'href="company.{name}.csv"' in str(getattr(b, "html", "")) for b in blocks), name
    board = pd.read_csv(out / "company.leaderboard.csv")
    assert len(board) > 4000 and board.Rank.min() == 1
    # the numbered ends are the full table's first and last rows
    first = next(b for b in blocks if "the first 10 of" in b.text and "Scores are points" in b.text)
    assert str(board.Rep.iloc[0]) in first.html
    last = next(b for b in blocks if "the last 10 of" in b.text and "Scores are points" in b.text)
    assert str(board.Rep.iloc[-1]) in last.html and f"{len(board):,}" in last.html


@pytest.mark.slow
def test_a_rep_review_shows_the_rep_s_neighbourhood(big_company: Path, company_review) -> None:
    """With public leaderboards a rep review charts the reps ranked near the rep, not all of the role."""
    from analysis.reports import review, steering_review

    config = (big_company / "workbench.yml").read_text(encoding="utf-8")
    public = big_company.parent / "public"
    shutil.copytree(big_company, public)
    (public / "workbench.yml").write_text(config + "\nleaderboards_public: true\n", encoding="utf-8")
    from analysis.steering import scorecard

    company, _, _ = company_review  # the same data: leaderboards_public changes who may be named, not ranks
    board = scorecard.leaderboard(company.ds, company.period)
    rep = board[board.role == "AE"].sort_values("rank").iloc[len(board[board.role == "AE"]) // 2]
    r = review.setup(cadence="quarterly", scope="rep", scope_value=rep.rep_id, data=str(public))
    blocks = steering_review.scorecard_section(r)
    chart = next(b for b in blocks if getattr(b, "rows", None) is not None)
    assert chart.rows <= 2 * (r.ds.config.review.top + 1)
    assert rep["name"] in chart.html and "neighbours" in chart.text + chart.html


def test_charts_refuse_more_marks_than_the_bound() -> None:
    import altair as alt

    frame = pd.DataFrame({"x": range(charts.MAX_MARKS + 1), "y": 1})
    with pytest.raises(charts.PresentationError, match="data rows"):
        charts.to_svg(alt.Chart(frame, title="Too many").mark_bar().encode(x="x:Q", y="y:Q"))


def test_attach_in_a_live_notebook_keeps_the_table(big_company: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analysis.reports import review

    monkeypatch.delenv(render.ATTACH_DIR_ENV, raising=False)
    r = review.setup(cadence="quarterly", data=str(big_company))
    block = r.attach("x", pd.DataFrame({"a": [1, 2]}), what="rows")
    assert "r.tables['x']" in block.text and r.tables["x"].a.tolist() == [1, 2]


def test_review_layout_refuses_overlapping_ends() -> None:
    from analysis.data.config import ReviewLayout

    with pytest.raises(ValueError, match="at least twice"):
        ReviewLayout(top=30, list_all_up_to=50)


ATTACHING = """\
import os, pathlib
folder, stem = os.environ["WORKBENCH_ATTACHMENTS"], os.environ["WORKBENCH_ATTACHMENT_STEM"]
for name in names.split():
    pathlib.Path(folder, f"{stem}.{name}.csv").write_text(f"table\\n{name}\\n")
assert not fail, "failed on purpose"
"""


def _attaching_notebook(folder: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('names = "a b"\nfail = False')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(ATTACHING)]
    path = folder / "attaching.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_attachments_are_published_and_replaced_with_their_report(tmp_path: Path) -> None:
    notebook = _attaching_notebook(tmp_path)
    target = tmp_path / "out" / "company.html"
    render.render(notebook, {"names": "a b"}, target, title="Attached")
    folder = target.parent
    assert (folder / "company.a.csv").read_text() == "table\na\n"
    assert json.loads((folder / "company.json").read_text())["attachments"] == ["company.a.csv", "company.b.csv"]
    # a failed render changes nothing
    with pytest.raises(render.RenderError):
        render.render(notebook, {"names": "c", "fail": True}, target, title="Attached")
    assert sorted(p.name for p in folder.glob("company.*.csv")) == ["company.a.csv", "company.b.csv"]
    # the next render's set replaces the old one: b (no longer attached) goes, c comes
    render.render(notebook, {"names": "a c"}, target, title="Attached")
    assert sorted(p.name for p in folder.glob("company.*.csv")) == ["company.a.csv", "company.c.csv"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_attachments_land_beside_a_report_given_by_a_relative_path(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``make review`` passes ``--out reports`` while the kernel runs in notebooks/: the folder
    handed to the kernel must not depend on the working directory."""
    notebook = _attaching_notebook(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    render.render(notebook, {"names": "a"}, Path("out") / "company.html", title="Attached", cwd=tmp_path / "elsewhere")
    assert (tmp_path / "out" / "company.a.csv").read_text() == "table\na\n"


def test_each_connection_spills_to_a_folder_of_its_own(tiny: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB names spill files alike in every process: a shared folder let two concurrent
    reviews overwrite each other's spilled data (read back as garbage or an IO error)."""
    import tempfile

    import analysis

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    base = tmp_path / f"workbench-duckdb-{os.getuid()}"
    dead = base / "999999999-0a1b2c3d"  # no process has that pid
    dead.mkdir(parents=True)
    folders = set()
    for _ in range(2):
        ds = analysis.load(tiny)
        (folder,) = ds.con.raw_sql("SELECT current_setting('temp_directory')").fetchone()
        folders.add(folder)
    assert len(folders) == 2
    assert all(Path(f).parent == base for f in folders)
    assert not dead.exists()
    # a query larger than the memory limit spills there and still answers
    ds.con.raw_sql("SET memory_limit = '40MB'")
    ds.con.raw_sql("SET preserve_insertion_order = false")
    (n,) = ds.con.raw_sql("SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS h FROM range(1000000) t(i) "
                          "ORDER BY h)").fetchone()
    assert n == 1_000_000
    assert Path(folder).is_dir(), "the sort spilled into the connection's own folder"
