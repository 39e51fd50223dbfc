"""The two dependency lists (pyproject.toml and environment.yml) must not drift apart."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(3).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *sum(project.get("optional-dependencies", {}).values(), [])]
    py = dict(_split(r) for r in wanted)

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    conda = {}
    pip_section = None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section = dep.get("pip")
            continue
        name, spec = _split(dep.replace("=", "==", 1) if re.match(r"^[\w\-]+=[^=]", dep) else dep)
        if name not in ("python", "pip"):
            conda[name] = spec
    assert conda == py, f"drift: only in pyproject {set(py.items()) - set(conda.items())}, " \
                        f"only in environment.yml {set(conda.items()) - set(py.items())}"
    assert pip_section and any(line.strip() in ("-e .", ".") for line in pip_section), \
        "environment.yml must pip-install the package itself"


def test_ci_calls_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci
    assert "make test" in readme and "make review" in readme
