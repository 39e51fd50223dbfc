from pathlib import Path

import pytest

from analysis.data.config import Config, load_config, parse_config
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
