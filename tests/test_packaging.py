"""Set-up files agree with each other and with the README."""
from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement

from conftest import ASSIGNMENTS, ROOT

README = (ROOT / "README.md").read_text()
REPO = "lr-course/learning-rate-strategies"


def _requirements(lines):
    return {Requirement(line).name.lower(): str(Requirement(line).specifier)
            for line in lines if not line.startswith("-")}


def test_environment_yml_lists_exactly_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _requirements(pip_section) == _requirements(project["dependencies"])
    # CPU-only PyTorch keeps the Binder image small.
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip_section


def test_binder_python_is_supported_by_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert Requirement(f"python{project['requires-python']}").specifier.contains(python.split("=")[1] + ".0")


def test_requirements_pin_the_tested_torch_and_install_the_course():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert "torch==2.13.0" in lines
    assert "-e .[dev]" in lines


def _readme_commands():
    return re.findall(r"^(python3 course\.py \w+)\s", README, flags=re.M)


def test_readme_gives_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert "python3 course.py lab" in commands and "python3 course.py test" in commands
    ci = [l for l in (ROOT / ".ci" / "run").read_text().splitlines()
          if l.strip() and not l.startswith("#") and not l.startswith(("set ", "cd "))]
    assert ci == ["python3 course.py test"]


def test_binder_badge_opens_the_start_page():
    url = f"https://mybinder.org/v2/gh/{REPO}/main?urlpath=lab/tree/notebooks/00_start_here/00_start_here.ipynb"
    assert url in README
    assert (ROOT / "notebooks/00_start_here/00_start_here.ipynb").exists()


def test_readme_has_a_colab_badge_for_every_notebook():
    for aid in ASSIGNMENTS:
        url = f"https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{aid}/{aid}.ipynb"
        assert url in README, aid


def test_helpers_repository_constant_matches_the_badges():
    import helpers
    assert helpers.REPOSITORY == f"https://github.com/{REPO}"
