"""What a public demo receives: the hostile corpus (tests/hostile.py) through the reader and the
radiograph gate, the CLI and both API endpoints. Every case gets its specific refusal, or a
prediction when it is a readable radiograph; nothing crashes a batch or the server."""

from __future__ import annotations

import json
import logging

import pytest

from diachestxr.gate import NotARadiographError, RadiographGate
from diachestxr.io import WORK_MAX_SIDE, ImageReadError, read_xray
from tests.hostile import write_corpus
from tests.test_cli import run_cli

RADIOGRAPH = "00007471_000.jpg"  # a shipped sample: adult NIH radiograph, No Finding


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, examples_dir):
    folder = tmp_path_factory.mktemp("hostile")
    return folder, write_corpus(folder, read_xray(examples_dir / RADIOGRAPH))


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def gate() -> RadiographGate:
    return RadiographGate.load()


def test_every_case_is_refused_for_its_reason_or_read(corpus, gate):
    folder, cases = corpus
    for name, case in cases.items():
        try:
            gray = read_xray(folder / name)
            verdict = gate.check(gray, name)
        except ImageReadError as err:  # NotARadiographError included
            assert case.refusal, f"{name} ({case.kind}) was refused: {err}"
            assert case.refusal in str(err), f"{name}: {err}"
            assert str(err).startswith(name), "the message names the file"
            assert "pylibjpeg" not in str(err), "advice for compressed DICOM only"
            if name == "strip.png":  # refused by a rule: no network score to contradict it
                assert "radiograph score" not in str(err)
            continue
        assert case.refusal is None, f"{name} ({case.kind}) was accepted (score {verdict.score:.2f})"
        assert max(gray.shape) <= WORK_MAX_SIDE  # large images are shrunk right after decoding


def test_the_gate_accepts_the_shipped_radiographs_and_refuses_their_negatives(examples_dir, gate):
    for path in sorted(examples_dir.glob("*.jp*g")):
        gray = read_xray(path)
        assert gate.check(gray, path.name).accepted
        with pytest.raises(NotARadiographError, match="negative"):
            gate.check(255 - gray, path.name)


def test_cli_reports_every_file_and_goes_on(corpus, examples_dir, random_weights_dir):
    folder, cases = corpus
    names = [n for n, c in cases.items() if not c.heavy]
    good = str(examples_dir / RADIOGRAPH)
    proc = run_cli("predict", "--task", "screening", "--json", "--batch-size", "4", "--weights",
                   str(random_weights_dir), *[str(folder / n) for n in names], good)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(folder / n) for n in names] + [good]
    for name, record in zip(names, records):
        if cases[name].refusal:
            assert cases[name].refusal in record.get("error", ""), record
        else:
            assert "label" in record and record["radiograph_check"]["accepted"], record
    assert records[-1]["radiograph_check"]["accepted"]


@pytest.mark.parametrize("endpoint", ["/screen", "/diagnose"])
def test_api_refuses_each_case_with_its_reason(client, corpus, endpoint):
    from gradio_client import handle_file

    folder, cases = corpus
    for name, case in cases.items():
        if case.heavy and endpoint == "/diagnose":
            continue  # one endpoint is enough for the large files (see benchmarks/memory.py)
        if case.refusal:
            with pytest.raises(Exception, match=case.refusal):
                client.predict(handle_file(str(folder / name)), api_name=endpoint)
        else:
            result, *_ = client.predict(handle_file(str(folder / name)), api_name=endpoint)
            assert result["radiograph_check"]["accepted"], name


def test_missing_or_damaged_gate_weights_are_a_weights_error(tmp_path, monkeypatch, caplog):
    """The check is resolved as the models are (a folder that holds one, the Hub, the bundled
    one); like a missing model, a missing or damaged one is reported, never a crash."""
    from diachestxr import weights
    from diachestxr.weights import WeightsError

    monkeypatch.setenv("DIACHESTXR_HUB_REPO", "none")
    with caplog.at_level(logging.INFO, logger="diachestxr.gate"):
        RadiographGate.load(tmp_path)  # none in this folder: the bundled one
    assert "radiograph check loaded from bundled" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="diachestxr.gate"):  # a model's file named
        RadiographGate.load(weights.BUNDLED_DIR / "diagnosis.safetensors")
    assert "radiograph check loaded from local" in caplog.text  # the gate.* beside it
    monkeypatch.setattr(weights, "BUNDLED_DIR", tmp_path / "nothing-bundled")
    with pytest.raises(WeightsError, match="no gate weights found.*training.train_gate"):
        RadiographGate.load(tmp_path)
    (tmp_path / "gate.json").write_text('{"kinds": ["radiograph"], "input_size": 128, "threshold": 0.5}')
    (tmp_path / "gate.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="cannot be loaded"):
        RadiographGate.load(tmp_path)
