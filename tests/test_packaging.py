"""Set-up files agree with each other and with the README."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
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


# ---------------------------------------------------------------- the CPU build of torch by default

def _pip_calls(monkeypatch, tmp_path, *, gpu: bool, index_answers: bool) -> list[list[str]]:
    """The pip commands course.py's set-up runs for a fresh .venv, recorded instead of run."""
    import sys

    sys.path.insert(0, str(ROOT))
    import course

    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    for name, value in {"VENV": venv, "STAMP": venv / "stamp", "LOCATION": venv / "where"}.items():
        monkeypatch.setattr(course, name, value)
    monkeypatch.delenv("LR_COURSE_TORCH_INDEX", raising=False)
    monkeypatch.setattr(course.sys, "platform", "linux")
    monkeypatch.setattr(course, "has_nvidia_gpu", lambda: gpu)
    monkeypatch.setattr(course, "answers", lambda url, timeout=5.0: index_answers)
    calls = []

    class Done:
        returncode = 0

    monkeypatch.setattr(course.subprocess, "run", lambda args, **kw: calls.append(list(args)) or Done())
    course.ensure_venv()
    return [c[c.index("install") + 1:] for c in calls if "pip" in c]


def test_setup_takes_the_cpu_build_of_torch_first_on_linux_without_a_gpu(monkeypatch, tmp_path):
    calls = _pip_calls(monkeypatch, tmp_path, gpu=False, index_answers=True)
    assert calls[0] == ["--disable-pip-version-check", "torch==2.13.0", "--extra-index-url",
                        "https://download.pytorch.org/whl/cpu"]
    assert calls[1][-2:] == ["-r", "requirements.txt"], "the pinned torch is installed before the rest"


@pytest.mark.parametrize("gpu, index_answers", [(True, True), (False, False)])
def test_setup_uses_pypi_alone_with_a_gpu_or_when_the_cpu_index_does_not_answer(monkeypatch, tmp_path, gpu,
                                                                                  index_answers):
    calls = _pip_calls(monkeypatch, tmp_path, gpu=gpu, index_answers=index_answers)
    assert not any("--extra-index-url" in c for c in calls), calls
    assert calls[0][-2:] == ["-r", "requirements.txt"]


def test_the_probe_of_the_cpu_index_is_quick_whatever_the_network():
    """On a machine that reaches only PyPI (CI), the probe fails within its few seconds."""
    import sys
    import time

    sys.path.insert(0, str(ROOT))
    import course

    for url in (f"{course.CPU_TORCH_INDEX}/torch/", "https://unreachable.invalid/whl/cpu/torch/",
                "http://10.255.255.1/whl/cpu/torch/"):  # an answer, an unknown name, silence
        start = time.monotonic()
        course.answers(url, timeout=2)
        assert time.monotonic() - start < 4, url


def _wheel(folder: Path, version: str) -> None:
    """A minimal wheel of the made-up project `lrcprobe` at ``version``."""
    import zipfile

    info = f"lrcprobe-{version}.dist-info"
    files = {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: lrcprobe\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / f"lrcprobe-{version}-py3-none-any.whl", "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)


def test_pip_prefers_the_cpu_build_and_the_pin_accepts_it(tmp_path):
    """What the design rests on, with pip itself: `torch==2.13.0` is met by `2.13.0+cpu`, and
    offered both, pip takes the `+cpu` one, so the CPU index can be a mere extra index."""
    import os
    import subprocess
    import sys

    from packaging.specifiers import SpecifierSet

    assert "2.13.0+cpu" in SpecifierSet("==2.13.0")
    _wheel(tmp_path / "pypi", "2.13.0")
    _wheel(tmp_path / "cpu", "2.13.0+cpu")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # this machine's own pip settings stay out of it
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-index", "-d",
                           str(tmp_path / "got"), "--find-links", str(tmp_path / "pypi"), "--find-links",
                           str(tmp_path / "cpu"), "lrcprobe==2.13.0"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in (tmp_path / "got").iterdir()] == ["lrcprobe-2.13.0+cpu-py3-none-any.whl"]
