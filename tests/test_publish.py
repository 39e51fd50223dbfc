"""Publishing reviews: unique file names per scope value, the offline guard against data text,
and a report's files published as one set.

Most tests run :func:`analysis.reports.render.render` with a fake notebook executor (it writes
an executed notebook at once), so they exercise naming, the guard, staging, switching, locking
and clean-up in well under a second each; two slow tests render the real review of the sample
data with hostile product, rep and team names.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from analysis.paths import SAMPLE_DATA
from analysis.reports import render, review
from analysis.reports.render import RenderError

DEMO = Path(__file__).parent / "fixtures" / "render_demo.ipynb"
_REAL_REPLACE = os.replace

PRODUCT = "Logo kit url(https://cdn.example.com/logo.png)"
REP = "Theo src=//evil.example/n.png"
TEAM_1, TEAM_2 = "销售一部", "销售二部"
HOSTILE_TEAM = 'West <b>"Ent"</b> & url(//evil.example/team.css)'


# -- helpers ----------------------------------------------------------------------------------


def fake_executor(body=lambda params: f'<p class="run">run {html.escape(params["title"])}</p>', delay=0.0,
                  calls: list | None = None):
    """A stand-in for render.execute_notebook: writes an executed notebook with one HTML output."""

    def execute(source, output, parameters=None, **_):
        if calls is not None:
            calls.append(("start", parameters["title"], time.monotonic()))
        time.sleep(delay)
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("show()")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": body(parameters),
                                                                        "text/plain": "x"})]
        nb.cells = [nbformat.v4.new_markdown_cell("## Section A"), cell]
        nbformat.write(nb, str(output))
        if calls is not None:
            calls.append(("end", parameters["title"], time.monotonic()))
        return Path(output)

    return execute


def run_of(folder: Path, stem: str = "company") -> dict[str, str | None]:
    """Which run (the title parameter) each file of the report's set comes from."""

    def grab(path: Path) -> str | None:
        if not path.exists():
            return None
        found = re.search(r"run (\w+)", path.read_text(encoding="utf-8"))
        return found.group(1) if found else "?"

    record = folder / f"{stem}.json"
    return {
        "html": grab(folder / f"{stem}.html"),
        "ipynb": grab(folder / f"{stem}.ipynb"),
        "json": json.loads(record.read_text())["parameters"]["title"] if record.exists() else None,
        "pdf": (folder / f"{stem}.pdf").read_text() if (folder / f"{stem}.pdf").exists() else None,
    }


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def render_fake(target: Path, title: str, **kw) -> Path:
    return render.render(DEMO, {"title": title}, target, title=f"Review {title}", **kw)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def copy_sample(folder: Path, *, teams: dict[str, str] | None = None, product: str | None = None,
                rep: str | None = None) -> Path:
    """A copy of data/sample with a team, the product Analytics and the rep Theo Price renamed."""
    def field(value: str) -> str:  # as a CSV field
        return '"' + value.replace('"', '""') + '"' if any(c in value for c in '",\n') else value

    shutil.copytree(SAMPLE_DATA, folder)
    for csv in folder.glob("*.csv"):
        text = original = csv.read_text(encoding="utf-8")
        for old, new in (teams or {}).items():
            text = re.sub(rf"(?m)(?:(?<=,)|^){re.escape(old)}(?=,|$)", lambda _, new=new: field(new), text)
        if product and csv.name == "opportunities.csv":
            text = text.replace(",Analytics,", f",{field(product)},")
        if rep and csv.name == "reps.csv":
            text = text.replace(",Theo Price,", f",{field(rep)},")
        if text != original:
            csv.write_text(text, encoding="utf-8")
    return folder


# -- A. one file per scope value --------------------------------------------------------------


def test_distinct_scope_values_get_distinct_readable_file_names(tmp_path: Path):
    def name(scope, value):
        return review.report_path(tmp_path, "quarterly", "2026-Q3", scope, value).name

    names = {v: name("team", v) for v in (TEAM_1, TEAM_2, "East SMB", "East_SMB", "east smb", "East-SMB")}
    assert len(set(names.values())) == len(names), names
    assert re.fullmatch(r"team-销售一部-[0-9a-f]{6}\.html", names[TEAM_1])
    assert re.fullmatch(r"team-east-smb-[0-9a-f]{6}\.html", names["East SMB"])
    assert name("team", "East SMB") == names["East SMB"], "the same value always gets the same file"
    assert name("company", "") == "company.html"
    assert re.fullmatch(r"rep-r0028-[0-9a-f]{6}\.html", name("rep", "R0028"))
    hostile = name("team", HOSTILE_TEAM)
    assert re.fullmatch(r"team-[\w-]+-[0-9a-f]{6}\.html", hostile) and not hostile.startswith(".")
    assert len(name("team", "名" * 300).encode()) < 200  # file names stay far below 255 bytes


def test_a_taken_name_of_another_value_gets_a_longer_hash(tmp_path: Path):
    first = review.report_path(tmp_path, "quarterly", "2026-Q3", "team", "East SMB")
    first.parent.mkdir(parents=True)
    first.with_suffix(".json").write_text(json.dumps({"scope": "team", "scope_value": "somebody else"}))
    other = review.report_path(tmp_path, "quarterly", "2026-Q3", "team", "East SMB")
    assert other != first and other.name.startswith(first.stem)
    first.with_suffix(".json").write_text(json.dumps({"scope": "team", "scope_value": "East SMB"}))
    assert review.report_path(tmp_path, "quarterly", "2026-Q3", "team", "East SMB") == first


@pytest.mark.slow
def test_reviews_of_two_teams_both_stay_and_the_index_names_them(monkeypatch, tmp_path: Path):
    data = copy_sample(tmp_path / "data", teams={"East SMB": TEAM_1, "Central SMB": TEAM_2,
                                                 "West Enterprise": HOSTILE_TEAM})
    body = lambda p: f"<p>run {html.escape(p['scope_value'])}</p>"  # noqa: E731
    monkeypatch.setattr(render, "execute_notebook", fake_executor(body))
    out = tmp_path / "reports"

    def check(paths: list[Path], teams: list[str]) -> None:
        assert len({p.name for p in paths}) == len(teams)
        for path, team in zip(paths, teams):
            # nbconvert writes text with quotes as they are: compare with text escaping
            assert f"run {html.escape(team, quote=False)}" in path.read_text(), f"the review of {team} was replaced"
            record = json.loads(path.with_suffix(".json").read_text())
            assert (record["scope"], record["scope_value"]) == ("team", team)

    teams = [TEAM_1, TEAM_2]
    paths = [review.render_review(cadence="quarterly", period="2026-Q3", data=data, out=out, team=t) for t in teams]
    check(paths, teams)
    teams.append(HOSTILE_TEAM)
    paths.append(review.render_review(cadence="quarterly", period="2026-Q3", data=data, out=out, team=HOSTILE_TEAM))
    check(paths, teams)
    index = (out / "index.html").read_text()
    scopes = re.findall(r"<tr><td>2026-Q3</td><td>([^<]*)</td>", index)
    assert scopes == sorted([f"Team {TEAM_1}", f"Team {TEAM_2}", f"Team {html.escape(HOSTILE_TEAM)}"],
                            key=str.casefold)
    assert HOSTILE_TEAM not in index and "<b>" not in index
    assert render.find_external_resources(index) == []


def test_index_shows_scope_names_from_the_records_escaped(tmp_path: Path):
    folder = tmp_path / "quarterly" / "2026-Q3"
    folder.mkdir(parents=True)
    for stem, scope, value in [("company", "company", ""), ("team-x-111111", "team", "<i>Zed</i> & co"),
                               ("team-a-222222", "team", "Alpha"), ("rep-r1-333333", "rep", "R1")]:
        (folder / f"{stem}.html").write_text("<html></html>")
        (folder / f"{stem}.json").write_text(json.dumps({"title": f"Review {value}", "scope": scope,
                                                         "scope_value": value,
                                                         "rendered_at": "2026-10-02T08:00:00+00:00"}))
    text = render.write_index(tmp_path).read_text()
    scopes = re.findall(r"<tr><td>2026-Q3</td><td>([^<]*)</td>", text)
    assert scopes == ["Company", "Rep R1", "Team &lt;i&gt;Zed&lt;/i&gt; &amp; co", "Team Alpha"]  # by name
    assert "<i>Zed" not in text


# -- B. data text is inert; the guard looks at loading places only ----------------------------


INERT = f"""<html><head><meta charset="utf-8"><title>{html.escape(PRODUCT)}</title>
<style>.x{{background:url(data:image/png;base64,AAAA)}} svg{{clip-path:url(#clip1)}}</style></head><body>
<h2>By product</h2><table><tr><td>{html.escape(PRODUCT)}</td><td>@import "https://cdn.example.com/a.css";</td></tr></table>
<p>{html.escape(REP)} wrote <code>&lt;img src="https://evil.example/x.png"&gt;</code></p>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" role="img"
 aria-label="who: 3. {html.escape(REP)} (SDR)"><title>{html.escape(REP)}</title>
<path aria-label="product: {html.escape(PRODUCT)}" clip-path="url(#wb1-clip1)" fill="url(#grad)"></path>
<text>{html.escape(REP)}</text><use href="#mark"></use><image href="data:image/png;base64,AAAA"></image></svg>
<img src="data:image/png;base64,AAAA" alt="{html.escape(REP)}" title="url(https://cdn.example.com/t.png)">
<a href="https://docs.example/metric">docs</a><img src="img/local.png">
<img srcset="data:image/png;base64,//8AAA,//8BBB 1x, img/local@2x.png 2x">
<!-- <img src="https://evil.example/commented.png"> -->
<script type="application/json">{{"u": "https://cdn.example.com/data.json"}}</script>
</body></html>"""


def test_text_and_labels_are_not_resources():
    assert render.find_external_resources(INERT) == []


@pytest.mark.parametrize(
    ("snippet", "url"),
    [
        ('<img src="https://evil.example/a.png">', "https://evil.example/a.png"),
        ("<img src=//evil.example/a.png>", "//evil.example/a.png"),
        ('<img src=" &#47;&#47;evil.example/e.png">', "//evil.example/e.png"),
        ('<img srcset="data:image/png;base64,AA 1x, https://evil.example/2x.png 2x">', "https://evil.example/2x.png"),
        ('<video poster="http://evil.example/p.jpg"></video>', "http://evil.example/p.jpg"),
        ('<object data="//evil.example/o.swf"></object>', "//evil.example/o.swf"),
        ('<iframe src="https://evil.example/f"></iframe>', "https://evil.example/f"),
        ('<link rel="stylesheet" href="https://cdn.example/s.css">', "https://cdn.example/s.css"),
        ('<script src="https://cdn.example/s.js"></script>', "https://cdn.example/s.js"),
        ('<svg><image xlink:href="https://evil.example/i.png"/></svg>', "https://evil.example/i.png"),
        ('<svg><use href="//evil.example/s.svg#m"/></svg>', "//evil.example/s.svg#m"),
        ('<style>@import "https://cdn.example/i.css";</style>', "https://cdn.example/i.css"),
        ("<style>.a{background:URL( 'https://cdn.example/b.png' )}</style>", "https://cdn.example/b.png"),
        (r"<style>.a{background:u\72l(https://cdn.example/esc.png)}</style>", "https://cdn.example/esc.png"),
        ('<div style="background-image:url(//evil.example/bg.png)">x</div>', "//evil.example/bg.png"),
        ('<svg><rect fill="url(https://evil.example/p.svg#g)"/></svg>', "https://evil.example/p.svg#g"),
        ('<meta http-equiv="refresh" content="0; url=https://evil.example/">', "https://evil.example/"),
        ('<script>fetch("https://api.example/x")</script>', "https://api.example/x"),
        ('<iframe srcdoc="&lt;img src=https://evil.example/in.png&gt;"></iframe>', "https://evil.example/in.png"),
    ],
)
def test_real_loading_places_are_found(snippet: str, url: str):
    assert render.find_external_resources(f"<html><body><p>text</p>{snippet}</body></html>") == [url]


def test_a_finding_says_where_it_is_and_which_text_holds_it():
    page = (f"<h2>By product</h2><table><tr><td>{html.escape(PRODUCT)}</td>"
            '<td style="background:url(https://cdn.example.com/logo.png)">3</td></tr></table>')
    [found] = render.external_resources(page)
    assert found.url == "https://cdn.example.com/logo.png"
    assert found.section == "By product" and found.value == PRODUCT and found.value_place == "a table cell"
    assert 'style=""' in found.where and PRODUCT in found.context


def test_a_url_from_data_text_does_not_block_the_report(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(render, "execute_notebook", fake_executor(lambda p: INERT.split("<body>")[1]))
    target = render_fake(tmp_path / "q" / "2026-Q3" / "company.html", "A")
    assert target.is_file() and html.escape(PRODUCT) in target.read_text()


def test_a_finding_caused_by_data_names_the_value_not_the_code(monkeypatch, tmp_path: Path):
    # an output that put a data value into markup (here a style attribute) instead of text
    body = (f"<table><tr><td>{html.escape(PRODUCT)}</td></tr></table>"
            f'<div style="background:{PRODUCT.removeprefix("Logo kit ")}">x</div>')
    monkeypatch.setattr(render, "execute_notebook", fake_executor(lambda p: body))
    with pytest.raises(RenderError) as caught:
        render_fake(tmp_path / "q" / "2026-Q3" / "company.html", "A")
    message = str(caught.value)
    assert "\n" not in message
    assert "https://cdn.example.com/logo.png" in message and repr(PRODUCT) in message
    assert "Section A" in message and "charts.show()" not in message
    assert (tmp_path / "q" / "2026-Q3" / "company.failed.ipynb").is_file()


def test_a_finding_caused_by_code_says_where(monkeypatch, tmp_path: Path):
    body = '<p>Revenue grew</p><script src="https://cdn.jsdelivr.net/npm/vega@6"></script>'
    monkeypatch.setattr(render, "execute_notebook", fake_executor(lambda p: body))
    with pytest.raises(RenderError) as caught:
        render_fake(tmp_path / "q" / "2026-Q3" / "company.html", "A")
    message = str(caught.value)
    assert "https://cdn.jsdelivr.net/npm/vega@6" in message and "<script src>" in message
    assert "Revenue grew" in message and "charts.show()" in message


def test_chart_labels_keep_text_that_looks_like_svg_references():
    import altair as alt
    import pandas as pd

    from analysis.reports import charts

    label = 'Kit id="clip1" url(#clip1) href="#x"'
    chart = alt.Chart(pd.DataFrame({"product": [label, "Other"], "deals": [3, 2]}), title="Deals by product")
    svg = charts.show(chart.mark_bar(clip=True).encode(y="product:N", x="deals:Q")).html
    assert f">{html.escape(label, quote=False)}<" in svg, "the label is drawn as written"
    assert re.search(r'clip-path="url\(#wb\d+-\w+-clip\d+\)"', svg), "the chart's own references are scoped"
    assert render.find_external_resources(svg) == []


@pytest.fixture(scope="module")
def hostile_reports(tmp_path_factory) -> Path:
    """The sample with a product, a rep and teams renamed to text that looks like URLs and markup,
    rendered for real: the company review and the review of the team of the renamed rep."""
    tmp = tmp_path_factory.mktemp("hostile")
    data = copy_sample(tmp / "data", teams={"East SMB": TEAM_1, "West Enterprise": HOSTILE_TEAM},
                       product=PRODUCT, rep=REP)
    out = tmp / "reports"
    review.render_review(cadence="quarterly", period="2026-Q3", data=data, out=out)
    review.render_review(cadence="quarterly", period="2026-Q3", data=data, out=out, team=TEAM_1)
    return out


@pytest.mark.slow
def test_hostile_names_render_as_inert_text(hostile_reports: Path):
    folder = hostile_reports / "quarterly" / "2026-Q3"
    company = (folder / "company.html").read_text(encoding="utf-8")
    assert render.find_external_resources(company) == []
    cell = r'<td(?: style="[^"]*")?>{}</td>'
    assert re.search(cell.format(re.escape(html.escape(PRODUCT))), company)  # the product's table row
    assert re.search(cell.format(re.escape(html.escape(REP))), company)  # the leaderboard
    assert html.escape(HOSTILE_TEAM, quote=False) in company and HOSTILE_TEAM not in company
    svg_labels = re.findall(r'aria-label="([^"]*)"', company)
    assert any(REP in html.unescape(label) for label in svg_labels), "the rep is in a chart label"
    [team_page] = folder.glob(f"team-{TEAM_1}-*.html")
    team = team_page.read_text(encoding="utf-8")
    assert render.find_external_resources(team) == [] and REP in html.unescape(team)
    assert f"<title>Quarterly review 2026-Q3: Team {TEAM_1}</title>" in team


@pytest.mark.slow
def test_hostile_names_are_listed_by_name_in_the_index(hostile_reports: Path):
    index = (hostile_reports / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<tr><td>2026-Q3</td><td>([^<]*)</td>", index) == ["Company", f"Team {TEAM_1}"]
    assert not [p for p in (hostile_reports / "quarterly" / "2026-Q3").iterdir() if p.name.startswith(".")]


# -- C. one set, published together -----------------------------------------------------------


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(render, "execute_notebook", fake_executor())


def _earlier_set(folder: Path) -> None:
    """A good earlier report (run old) with a PDF beside it."""
    render_fake(folder / "company.html", "old")
    (folder / "company.pdf").write_text("old")


def _count_replaces(monkeypatch, folder: Path) -> int:
    calls = []
    monkeypatch.setattr(os, "replace", lambda *a, **k: (calls.append(a), _REAL_REPLACE(*a, **k))[1])
    render_fake(folder / "company.html", "counting")
    monkeypatch.setattr(os, "replace", _REAL_REPLACE)
    return len(calls)


def _fail_replace(monkeypatch, n: int, *, for_good: bool) -> None:
    """os.replace raises on its n-th call (and, ``for_good``, on every later one: a dead process)."""
    count = [0]

    def replace(*args, **kw):
        count[0] += 1
        if count[0] == n or (for_good and count[0] > n):
            raise OSError(28, "No space left on device (simulated)")
        return _REAL_REPLACE(*args, **kw)

    monkeypatch.setattr(os, "replace", replace)


def test_an_error_at_any_step_of_publishing_leaves_the_earlier_set(fake, monkeypatch, tmp_path: Path):
    steps = _count_replaces(monkeypatch, tmp_path / "count")
    assert steps >= 3
    for n in range(1, steps + 1):
        folder = tmp_path / f"step{n}" / "quarterly" / "2026-Q3"
        _earlier_set(folder)
        _fail_replace(monkeypatch, n, for_good=False)
        with pytest.raises((RenderError, OSError)) as caught:
            render_fake(folder / "company.html", "new")
        monkeypatch.setattr(os, "replace", _REAL_REPLACE)
        assert run_of(folder) == {"html": "old", "ipynb": "old", "json": "old", "pdf": "old"}, f"step {n}"
        assert hidden(folder) == [], f"step {n}: temporary files left"
        assert isinstance(caught.value, RenderError) and "No space left on device" in str(caught.value)


def test_a_crash_mid_switch_is_finished_by_the_next_run(fake, monkeypatch, tmp_path: Path):
    steps = _count_replaces(monkeypatch, tmp_path / "count")
    for n in range(1, steps + 1):
        root = tmp_path / f"step{n}"
        folder = root / "quarterly" / "2026-Q3"
        _earlier_set(folder)
        _fail_replace(monkeypatch, n, for_good=True)  # nothing works any more, not even putting back
        with pytest.raises((RenderError, OSError)):
            render_fake(folder / "company.html", "new")
        monkeypatch.setattr(os, "replace", _REAL_REPLACE)
        render.write_index(root)  # what the next run does first
        state = run_of(folder)
        assert state in ({"html": "old", "ipynb": "old", "json": "old", "pdf": "old"},
                         {"html": "new", "ipynb": "new", "json": "new", "pdf": None}), f"step {n}: {state}"
        assert hidden(folder) == [], f"step {n}: temporary files left"
        index = (root / "index.html").read_text()
        assert f"Review {state['html']}" in index


def test_a_failed_run_keeps_the_earlier_set(monkeypatch, tmp_path: Path):
    folder = tmp_path / "quarterly" / "2026-Q3"
    monkeypatch.setattr(render, "execute_notebook", fake_executor())
    _earlier_set(folder)

    def failing(source, output, parameters=None, **_):
        fake_executor()(source, output, parameters)
        raise RenderError("notebook failed in cell [3]: ValueError: boom", executed=Path(output))

    monkeypatch.setattr(render, "execute_notebook", failing)
    with pytest.raises(RenderError, match="boom"):
        render_fake(folder / "company.html", "new")
    assert run_of(folder) == {"html": "old", "ipynb": "old", "json": "old", "pdf": "old"}
    assert "run new" in (folder / "company.failed.ipynb").read_text()
    assert hidden(folder) == []


def test_stale_temporary_files_of_dead_runs_are_removed(fake, tmp_path: Path):
    folder = tmp_path / "quarterly" / "2026-Q3"
    folder.mkdir(parents=True)
    gone = dead_pid()
    hour_ago = time.time() - 3600

    def make(name: str, *, old: bool = False, folder_: bool = False) -> Path:
        path = folder / name
        if folder_:
            path.mkdir()
            (path / "company.ipynb").write_text("{}")
        else:
            path.write_text("half written")
        if old:
            os.utime(path, (hour_ago, hour_ago))
        return path

    dead_stage = make(f".company.{gone}-abcd1234.tmp", folder_=True)
    dead_other = make(f".team-x-123abc.{gone}-efgh5678.tmp", folder_=True)
    legacy_old = make(".company.k3j4h5g6.ipynb", old=True)  # earlier versions: no pid, go by age
    legacy_new = make(".company.zzzz9999.html")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({str(folder / '.team-y-456def.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = make(f".team-y-456def.{gone}-ijkl9012.tmp", old=True, folder_=True)  # that report is rendering
        render_fake(folder / "company.html", "new")
        assert not dead_stage.exists() and not dead_other.exists() and not legacy_old.exists()
        assert legacy_new.exists(), "a young temporary file without pid may belong to a live run"
        assert busy.exists(), "the temporary files of a report being rendered are its run's business"
    finally:
        holder.kill()
        holder.wait()
    assert run_of(folder)["html"] == "new"


def test_two_renders_of_one_report_take_turns(monkeypatch, tmp_path: Path):
    calls: list = []
    monkeypatch.setattr(render, "execute_notebook", fake_executor(delay=0.4, calls=calls))
    target = tmp_path / "quarterly" / "2026-Q3" / "company.html"
    start = threading.Barrier(2)
    errors: list = []

    def run(title: str) -> None:
        start.wait()
        try:
            render_fake(target, title)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(t,)) for t in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    events = [e[:2] for e in sorted(calls, key=lambda e: e[2])]
    first, second = events[0][1], events[2][1]
    assert events == [("start", first), ("end", first), ("start", second), ("end", second)], "runs interleaved"
    assert run_of(target.parent) == {"html": second, "ipynb": second, "json": second, "pdf": None}
    assert hidden(target.parent) == []


def test_a_render_waits_for_the_lock_then_says_who_holds_it(fake, tmp_path: Path):
    folder = tmp_path / "quarterly" / "2026-Q3"
    folder.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, time\n"
         f"fd = os.open({str(folder / '.company.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, f'{os.getpid()}\\n'.encode())\n"
         "print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(RenderError) as caught:
            render_fake(folder / "company.html", "new", lock_timeout=0.5)
        assert time.monotonic() - started < 10
        assert f"pid {holder.pid}" in str(caught.value) and "company.html" in str(caught.value)
        assert not (folder / "company.html").exists()
    finally:
        holder.kill()
        holder.wait()
    render_fake(folder / "company.html", "new", lock_timeout=5)  # free once its holder is gone
    assert run_of(folder)["html"] == "new" and hidden(folder) == []


def test_the_html_and_its_record_carry_the_same_render_id(fake, tmp_path: Path):
    target = render_fake(tmp_path / "quarterly" / "2026-Q3" / "company.html", "A")
    record = json.loads(target.with_suffix(".json").read_text())
    assert f'<meta name="wb-render-id" content="{record["render_id"]}">' in target.read_text()
    assert render.find_external_resources(target.read_text()) == []
