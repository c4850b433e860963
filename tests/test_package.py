"""The project as a Python package: pinned requirements in step with pyproject.toml, a wheel
that installs and runs the `diachestxr` command, and a small Docker build context."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

MAX_DOCKER_CONTEXT_MB = 40


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"requirements.txt pins exact versions: {line}"
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_requirements_pin_exactly_what_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(d).name): Requirement(d) for d in project["dependencies"]}
    pins = _pins()
    assert set(pins) == set(declared), "requirements.txt and pyproject.toml list other packages"
    for name, req in declared.items():
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{name}=={pins[name]} (requirements.txt) is outside {req.specifier} (pyproject.toml)"
    assert project["scripts"]["diachestxr"] == "diachestxr.cli:main"
    assert {"dicom", "train", "dev"} <= set(project["optional-dependencies"])


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """`pip wheel .`, installed into a folder of its own (the dependencies are this venv's)."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q",
                    "-w", str(tmp / "dist")], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp / "dist").glob("diachestxr-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(tmp / "site"), str(wheel)], check=True, capture_output=True, timeout=300)
    return tmp / "site"


def test_the_wheel_installs_a_working_command(installed_wheel, examples_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed_wheel), "DIACHESTXR_HUB_REPO": "none"}
    command = [sys.executable, str(installed_wheel / "bin" / "diachestxr")]
    # outside the checkout, so only the installed copy can be imported
    version = subprocess.run([*command, "--version"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("diachestxr "), version.stderr
    proc = subprocess.run([*command, "predict", "--task", "screening", "--json",
                           str(examples_dir / "4fed5061.jpg")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["task"] == "screening" and record["label"]
    # the bundled weights and the sample images travel in the wheel
    where = subprocess.run([sys.executable, "-c", "import diachestxr.weights as w, diachestxr.examples "
                            "as e; print(w.BUNDLED_DIR); print(len(e.list_examples(allow_download=False)))"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    bundled, n_examples = where.stdout.split()
    assert Path(bundled).is_relative_to(installed_wheel) and int(n_examples) == 13


def _docker_context() -> list[Path]:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def ignored(rel: str) -> bool:
        """.dockerignore's rules as used here: a pattern matches a path or any folder above
        it; "**/name" matches a name at any depth."""
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return any(any(fnmatch.fnmatch(part, p[3:]) for part in parts) if p.startswith("**/")
                   else any(fnmatch.fnmatch(prefix, p) for prefix in prefixes) for p in patterns)

    return [p for p in ROOT.rglob("*") if p.is_file() and not ignored(p.relative_to(ROOT).as_posix())]


def test_the_docker_build_context_is_small_and_has_what_the_image_runs():
    files = _docker_context()
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert {"app.py", "requirements.txt", "pyproject.toml", "README.md",
            "diachestxr/weights/diagnosis.safetensors", "examples/manifest.csv"} <= names
    assert not [n for n in names if n.startswith((".venv/", ".git/", "runs/", "tests/"))]
    size_mb = sum(p.stat().st_size for p in files) / 2**20
    assert size_mb < MAX_DOCKER_CONTEXT_MB, f"docker build context is {size_mb:.0f} MB"
    dockerfile = (ROOT / "Dockerfile").read_text()
    for needed in ("USER app", "EXPOSE 7860", "HEALTHCHECK", "download.pytorch.org/whl/cpu"):
        assert needed in dockerfile
