import time
from pathlib import Path

import pytest
import yaml

from analysis.__main__ import main
from analysis.data import config as config_module
from analysis.data.config import (
    DATE_RANGE,
    MAX_ALIAS_NODES,
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    Config,
    load_config,
    parse_config,
)
from analysis.errors import ConfigError


def test_defaults_work_without_a_file(tmp_path):
    cfg = load_config(None, data_dir=tmp_path)
    assert cfg == Config()
    assert cfg.timezone == "UTC" and cfg.fiscal_year_start_month == 1
    assert cfg.working_days == ("mon", "tue", "wed", "thu", "fri")
    assert cfg.scorecard.weights["opportunities_created"] == 15


def test_file_beside_the_data_is_read(tmp_path):
    (tmp_path / "workbench.yml").write_text(
        "timezone: Europe/Berlin\nfiscal_year_start_month: 7\n"
        "stages:\n  - {name: Discovery Call, step: prospecting, probability: 0.05}\n"
        "  - {name: Negotiation, step: Objection Handling}\n"
    )
    cfg = load_config(None, data_dir=tmp_path)
    assert cfg.timezone == "Europe/Berlin"
    assert cfg.fiscal_year_start_month == 7
    assert cfg.step_of("discovery_call") == "prospecting"
    assert cfg.step_of("NEGOTIATION") == "objection_handling"
    assert cfg.default_probability("prospecting") == 0.05
    assert cfg.stage_order() == ["Discovery Call", "Negotiation"]


def test_step_of_without_config_matches_canonical_names_and_closed_stages():
    cfg = Config()
    assert cfg.step_of("Objection Handling") == "objection_handling"
    assert cfg.step_of("objection_handling") == "objection_handling"
    assert cfg.step_of("Qualification") == "qualification"
    assert cfg.step_of("Closed Won") == "won"
    assert cfg.step_of("closed_lost") == "lost"
    assert cfg.step_of("Negotiation") is None
    assert cfg.step_of(None) is None


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"timezon": "UTC"}, "timezon: unknown key; did you mean 'timezone'?"),
        ({"fiscal_year_start_month": 13}, "fiscal_year_start_month"),
        ({"timezone": "Europe/Berln"}, "did you mean 'Europe/Berlin'"),
        ({"stages": [{"name": "X", "step": "qualificaton"}]}, "stages.0.step: unknown step 'qualificaton' (did you mean 'qualification'?)"),
        ({"working_days": ["mon", "funday"]}, "unknown weekday 'funday'"),
        ({"scorecard": {"wieghts": {}}}, "scorecard.wieghts: unknown key; did you mean 'weights'?"),
        ({"stages": [{"name": "A", "step": "demo"}, {"name": "a", "step": "demo"}]}, "listed twice"),
        ({"metrics": [{"id": "x", "type": "ratio", "numerator": "calls"}]}, "ratio metric 'x' needs denominator"),
    ],
)
def test_invalid_config_names_the_key(data, expected):
    with pytest.raises(ConfigError) as err:
        parse_config(data, origin="workbench.yml")
    msg = str(err.value)
    assert msg.startswith("workbench.yml: invalid config:")
    assert expected in msg
    assert "\n" not in msg


def test_yaml_syntax_error_gives_line(tmp_path):
    p = tmp_path / "workbench.yml"
    p.write_text("timezone: UTC\nstages: [\n")
    with pytest.raises(ConfigError, match=r"workbench.yml line \d+: not valid YAML"):
        load_config(p)


def test_missing_config_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yml")


def test_non_mapping_config_is_rejected():
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config(["a"])  # type: ignore[arg-type]


# -- hostile or broken workbench.yml files: one line, exit 2, fast ---------------------------

def _validate(folder: Path, capsys) -> tuple[int, str, float]:
    """Run ``validate`` in-process: exit code, the one stderr line, seconds taken."""
    capsys.readouterr()
    start = time.perf_counter()
    rc = main(["validate", str(folder)])
    took = time.perf_counter() - start
    err = capsys.readouterr().err
    return rc, err, took


def _refused(folder: Path, capsys, *needles: str, within: float | None = None) -> str:
    rc, err, took = _validate(folder, capsys)
    assert rc == 2, err
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "workbench.yml" in err
    assert "internal error" not in err
    for needle in needles:
        assert needle in err, err
    assert len(err) < 1000, err[:300]
    if within is not None:
        assert took < within, f"took {took:.1f}s"
    return err


def _billion_laughs(indent: str) -> str:
    """Anchors ``a0 .. a9``, each a list of nine aliases of the one before: *a9 is 9**9 values."""
    lines = [f"{indent}a0: &a0 [lol]"]
    for i in range(1, 10):
        lines.append(f"{indent}a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text",
    [
        # the anchors under columns: (free-form), the bomb as the time zone
        "columns:\n" + _billion_laughs("  ") + "timezone: *a9\n",
        # anchors and bomb inside a custom metric's where: (free-form too)
        "metrics:\n  - id: bomb\n    type: count\n    source: activities\n    where:\n"
        + _billion_laughs("      ") + "      type: *a9\n",
    ],
    ids=["timezone", "metric-where"],
)
def test_alias_bomb_is_refused_at_once(tiny, capsys, text):
    (tiny / "workbench.yml").write_text(text)
    _refused(tiny, capsys, ": alias *a3", f"aliases repeat more than {MAX_ALIAS_NODES:,} values",
             "billion laughs", "write the values out", within=1.0)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("x: &w [1, *w]\n", "alias *w is used inside the value it names"),
        ("timezone: *zone\n", "found undefined alias 'zone'"),
        ("x:\n" + "".join(f"  a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 60)).replace("*a0", "0"),
         f"nested more than {MAX_DEPTH} levels deep; a workbench.yml needs far fewer, so write the values out"),
        ("forecast:\n  <<: {seed: 1}\n  seed: 2\n", "merge keys (<<) are not allowed"),
    ],
    ids=["self-reference", "undefined", "deep-through-aliases", "merge-key"],
)
def test_unsafe_aliases_and_merge_keys_are_refused(tiny, capsys, text, needle):
    (tiny / "workbench.yml").write_text(text)
    _refused(tiny, capsys, needle, within=1.0)


def test_a_few_aliases_are_fine(tmp_path):
    (tmp_path / "workbench.yml").write_text(
        "stages:\n  - {name: Demo, step: &d demo}\n  - {name: Trial, step: *d}\n"
    )
    assert [s.step for s in load_config(None, data_dir=tmp_path).stages] == ["demo", "demo"]


def test_file_larger_than_the_bound_is_refused_unread(tiny, capsys):
    (tiny / "workbench.yml").write_text("name: x\n" + "#" * MAX_CONFIG_BYTES + "\n")
    _refused(tiny, capsys, f"larger than {MAX_CONFIG_BYTES:,} bytes", within=1.0)


@pytest.mark.parametrize(
    "text",
    [
        "holidays:\n" + "- 2026-01-01\n" * (MAX_NODES + 10),
        "where: [" + "[]," * MAX_NODES + "]\n",
        "scorecard:\n  weights:\n" + "".join(f"    k{i}: 1\n" for i in range(MAX_NODES // 2 + 10)),
    ],
    ids=["holidays", "flow-lists", "mapping"],
)
def test_file_with_too_many_values_is_refused_quickly(tiny, capsys, text):
    assert len(text.encode()) < MAX_CONFIG_BYTES
    (tiny / "workbench.yml").write_text(text)
    # ~0.8 s on an idle machine; the bound is loose for busy CI machines
    _refused(tiny, capsys, f"more than {MAX_NODES:,} values", "check that this is the right file", within=5.0)


@pytest.mark.parametrize(
    "text",
    ["timezone: " + "[" * 100_000 + "\n", "x: " + "{a: " * 100_000 + "\n",
     "".join(" " * i + "- \n" for i in range(200))],
    ids=["flow-lists", "flow-mappings", "block-lists"],
)
def test_deep_nesting_is_refused_before_the_recursion_limit(tiny, capsys, text):
    (tiny / "workbench.yml").write_text(text)
    _refused(tiny, capsys, f"nested more than {MAX_DEPTH} levels", "check the brackets and indentation", within=2.0)


def test_nesting_up_to_the_bound_is_read():
    expected: list = []
    for _ in range(MAX_DEPTH - 1):
        expected = [expected]
    path = Path("workbench.yml")
    assert config_module._parse_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, path) == expected
    with pytest.raises(ConfigError, match=f"line 1: lists and mappings are nested more than {MAX_DEPTH}"):
        config_module._parse_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), path)


@pytest.mark.parametrize(
    "data, needle",
    [
        ("name: Vertrieb Müller\n".encode("latin-1"), "line 1: not UTF-8 text (byte 0xfc)"),
        ("name: a\nholidays: [2026-01-01]\n# Zürich\n".encode("cp1252"), "line 3: not UTF-8 text"),
        ("timezone: UTC\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
        ("timezone: UTC\n".encode("utf-16-be"), "UTF-16 text without a byte-order mark"),
        (bytes(range(256)) * 4, "a binary file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "a binary file"),
        (b"\xff\xfe" + b"t\x00z\x00\x00\xd8", "not UTF-16 text"),  # a BOM, then a lone surrogate
        (b"name: a\x07b\n", "character U+0007 is not allowed"),
    ],
    ids=["latin-1", "cp1252", "utf-16le-no-bom", "utf-16be-no-bom", "binary", "png", "utf-16-broken", "control"],
)
def test_file_that_is_not_utf8_text_is_a_config_error(tiny, capsys, data, needle):
    (tiny / "workbench.yml").write_bytes(data)
    _refused(tiny, capsys, needle, "save workbench.yml as" if "U+" not in needle else "remove it")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf8_with_bom_and_utf16_utf32_with_bom_are_read(tmp_path, encoding):
    text = "name: Vertrieb Zürich\ntimezone: Europe/Zurich\n"
    data = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # these codecs write no BOM: add it
        data = ("\ufeff" + text).encode(encoding)
    (tmp_path / "workbench.yml").write_bytes(data)
    cfg = load_config(None, data_dir=tmp_path)
    assert cfg.name == "Vertrieb Zürich" and cfg.timezone == "Europe/Zurich"


def test_utf16_config_works_on_the_command_line(tiny, capsys):
    (tiny / "workbench.yml").write_text("timezone: Europe/Berlin\n", encoding="utf-16")
    rc, err, _ = _validate(tiny, capsys)
    assert rc == 0, err


@pytest.mark.parametrize(
    "text, needles",
    [
        ("holidays: [2026-02-30]\n", ("holidays.0: '2026-02-30' is not a real date", "YYYY-MM-DD")),
        ("holidays:\n  - 2026-01-01\n  - 2026-13-01\n", ("line 3", "holidays.1: '2026-13-01'", "month")),
        ("as_of: 2025-02-29\n", ("as_of: '2025-02-29' is not a real date",)),
        ("as_of: 0000-01-01\n", ("as_of: '0000-01-01' is not a real date",)),
        ("experiments:\n  - name: e\n    metric: win_rate\n    change_date: 2026-04-31\n",
         ("experiments.0.change_date: '2026-04-31'",)),
        ("limits: {earliest_date: 2020-00-10}\n", ("limits.earliest_date: '2020-00-10'",)),
    ],
)
def test_impossible_date_names_the_key_and_the_value(tiny, capsys, text, needles):
    (tiny / "workbench.yml").write_text(text)
    _refused(tiny, capsys, *needles)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("as_of: 9999-12-31\n", "as_of: 9999-12-31 is outside 1900-01-01 .. 2999-12-31"),
        ("as_of: 3000-01-01\n", "as_of: 3000-01-01 is outside"),
        ("as_of: 1899-12-31\n", "as_of: 1899-12-31 is outside"),
        ("as_of: '9999-12-31'\n", "as_of: 9999-12-31 is outside"),
        ("holidays: [2026-01-01, 9999-12-25]\n", "holidays.1: 9999-12-25 is outside"),
        ("limits: {earliest_date: 0001-01-01}\n", "limits.earliest_date: 0001-01-01 is outside"),
        ("experiments:\n  - {name: e, metric: win_rate, change_date: 9999-01-01}\n",
         "experiments.0.change_date: 9999-01-01 is outside"),
    ],
)
def test_dates_outside_the_supported_range_are_config_errors(tiny, capsys, text, needle):
    (tiny / "workbench.yml").write_text(text)
    _refused(tiny, capsys, needle, "give a date in that range")


def test_date_range_bounds_are_accepted_and_documented():
    lo, hi = DATE_RANGE
    assert parse_config({"as_of": hi, "holidays": [lo, hi]}).as_of == hi
    assert parse_config({"as_of": lo}).as_of == lo
    assert "2999-12-31" in Config.model_fields["as_of"].description


@pytest.mark.parametrize(
    "text, key",
    [
        ("timezone: UTC\ncurrency: USD\ntimezone: Europe/Berlin\n", "'timezone'"),
        ("forecast:\n  seed: 1\n  seed: 2\n", "'seed'"),
        ("forecast: {seed: 1, seed: 2}\n", "'seed'"),
        ("stages:\n  - name: A\n    step: demo\n  - name: B\n    step: demo\n    name: C\n", "'name'"),
        ("metrics:\n  - id: m\n    type: count\n    source: activities\n    where: {type: call, type: email}\n",
         "'type'"),
        (
            (
                "columns:\n  tables:\n    opportunities:\n      from: deals.csv\n      columns:\n"
                "        amount: {col: Value}\n        amount: {col: Amount}\n"
            ),
            "'amount'",
        ),
    ],
    ids=["top", "nested", "flow", "list-of-mappings", "metric-where", "columns"],
)
def test_duplicate_keys_are_refused_at_any_depth(tiny, capsys, text, key):
    (tiny / "workbench.yml").write_text(text)
    _refused(tiny, capsys, f"key {key} is given twice in one mapping; keep one")


@pytest.mark.parametrize(
    "text, needles",
    [
        ("? [a, b]\n: 1\n", ("a key must be a plain name",)),
        ("forecast:\n  seed: " + "7" * 5000 + "\n", ("forecast.seed:", "is not a usable number")),
        ("forecast: {seed: -1}\n", ("forecast.seed: Input should be greater than or equal to 0",)),
        ("timezone: America\n", ("unknown time zone 'America'", "IANA name")),
        ("timezone: " + "x" * 500_000 + "\n", ("unknown time zone 'xxxx", "characters)")),
        ("? " + "x" * 400_000 + "\n: 1\n", ("unknown key",)),
        ("holidays: [" + ", ".join(["2026-01-01"] * 20 + ["x"] * 50) + "]\n", ("and 40 more problems",)),
        ("timezone: !!python/object/apply:os.system [echo hi]\n", ("not valid YAML", "python/object")),
    ],
    ids=["list-key", "huge-int", "negative-seed", "zone-folder", "huge-zone", "huge-key", "many-errors",
         "python-tag"],
)
def test_other_hostile_values_are_one_line_config_errors(tiny, capsys, text, needles):
    (tiny / "workbench.yml").write_text(text)
    _refused(tiny, capsys, *needles, within=2.0)


def test_unreadable_file_is_a_config_error(tmp_path, monkeypatch):
    p = tmp_path / "workbench.yml"
    p.write_text("timezone: UTC\n")

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(ConfigError, match=r"workbench.yml: cannot be read \(Permission denied\); check the file"):
        load_config(p)


@pytest.mark.parametrize(
    "path",
    sorted((Path(config_module.__file__).parent / "presets").glob("*.yml"))
    + [Path(config_module.__file__).parents[1] / "semantic" / "catalog.yml"],
    ids=lambda p: p.name,
)
def test_shipped_yaml_files_pass_the_strict_loader(path):
    """The presets (copied under columns: by users) and the catalog need no alias, anchor, merge key
    or repeated key, so they read the same with the config's bounded loader."""
    assert config_module._parse_yaml(config_module._read_text(path), path) == yaml.safe_load(path.read_text("utf-8"))
