"""The project as a Python package: pinned requirements in step with pyproject.toml, a wheel
that installs and runs the `diachestxr` command, and a small Docker build context."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT, running_app

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


def _names(requirements: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(Requirement(d).name): Requirement(d) for d in requirements}


def test_requirements_pin_exactly_what_pyproject_declares():
    """requirements.txt (Spaces, CI) pins the core and the [app] extra; the core has no web
    framework in it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    core = _names(project["dependencies"])
    declared = {**core, **_names(extras["app"])}
    pins = _pins()
    assert set(pins) == set(declared), "requirements.txt and pyproject.toml list other packages"
    for name, req in declared.items():
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{name}=={pins[name]} (requirements.txt) is outside {req.specifier} (pyproject.toml)"
    assert project["scripts"]["diachestxr"] == "diachestxr.cli:main"
    assert {"app", "dicom", "train", "dev"} <= set(extras)
    assert "gradio" in _names(extras["app"]) and not {"gradio", "gradio-client"} & set(core)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel .` (no extras: they are metadata, the wheel is the same), from a copy of the
    checkout without build outputs: setuptools reuses a stale ./build, which would smuggle
    files of an older layout into the wheel."""
    import shutil

    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "runs", ".cache", "test-output",
        "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q",
                    "-w", str(tmp / "dist")], check=True, capture_output=True, timeout=300)
    (built,) = (tmp / "dist").glob("diachestxr-*.whl")
    return built


@pytest.fixture(scope="module")
def installed_wheel(wheel) -> Path:
    """The wheel installed into a folder of its own (the dependencies are this venv's)."""
    site = wheel.parent.parent / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    return site


@pytest.fixture(scope="module")
def without_gradio(tmp_path_factory) -> Path:
    """A folder that, first on PYTHONPATH, makes gradio and gradio_client import as if they
    were not installed (this venv has them; an install without the [app] extra does not)."""
    folder = tmp_path_factory.mktemp("no-gradio")
    for name in ("gradio", "gradio_client"):
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{name}'\", name={name!r})\n")
    return folder


def test_the_wheel_holds_the_package_and_not_training(wheel, installed_wheel):
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = next(z.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "diachestxr/web/style.css" in names and "diachestxr/web/demo.py" in names
    assert not [n for n in names if n.startswith("training/")]
    assert not (installed_wheel / "training").exists()
    # gradio only with the [app] extra
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]
    gradio = [r for r in requires if canonicalize_name(Requirement(r).name) == "gradio"]
    assert gradio and all(Requirement(r).marker is not None and "app" in str(Requirement(r).marker)
                          for r in gradio), gradio


def test_the_wheel_installs_a_working_command(installed_wheel, without_gradio, tmp_path):
    """Without the [app] extra: predict works (gradio cannot even be imported), and serve
    says which extra to install."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(without_gradio), str(installed_wheel)]),
           "DIACHESTXR_HUB_REPO": "none"}
    command = [sys.executable, str(installed_wheel / "bin" / "diachestxr")]
    serve = subprocess.run([*command, "serve", "--port", "9"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert serve.returncode == 2, serve.stderr
    assert len(serve.stderr.strip().splitlines()) == 1, serve.stderr
    assert 'pip install "diachestxr[app]"' in serve.stderr and "Traceback" not in serve.stderr
    # outside the checkout, so only the installed copy can be imported
    version = subprocess.run([*command, "--version"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("diachestxr "), version.stderr
    # the README's command line: a sample image the wheel carries, by name
    proc = subprocess.run([*command, "predict", "--task", "screening", "--json",
                           "--sample", "4fed5061.jpg"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["task"] == "screening" and record["label"]
    assert Path(record["file"]).is_relative_to(installed_wheel / "diachestxr" / "sample_images")
    # the bundled weights and the sample images travel in the wheel
    where = subprocess.run([sys.executable, "-c", "import diachestxr.weights as w, diachestxr.examples "
                            "as e; print(w.BUNDLED_DIR); print(len(e.list_examples(allow_download=False)))"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    bundled, n_examples = where.stdout.split()
    assert Path(bundled).is_relative_to(installed_wheel) and int(n_examples) == 13


def test_the_wheel_serves_the_app(installed_wheel, examples_dir, tmp_path):
    """With gradio (the [app] extra): `diachestxr serve` from the installed wheel answers the
    README's gradio_client call, with the weights and sample images the wheel carries."""
    from gradio_client import Client, handle_file

    env = {**os.environ, "PYTHONPATH": str(installed_wheel)}
    command = [sys.executable, str(installed_wheel / "bin" / "diachestxr"), "serve"]
    samples = installed_wheel / "diachestxr" / "sample_images"
    with running_app(None, samples, tmp_path / "serve.log", command=command, cwd=tmp_path,
                     env=env) as url:
        result, overlay = Client(url, verbose=False).predict(
            handle_file(str(examples_dir / "4fed5061.jpg")), api_name="/screen")
        with urllib.request.urlopen(url + "config", timeout=10) as r:
            config = r.read().decode()
    assert result["label"] and Path(overlay).is_file()
    assert result["model"]["location"] == "bundled with the app"
    assert "Sample images" in config  # the wheel's sample images


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
