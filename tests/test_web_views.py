"""The web app's parts without a server: the pure views, the session's state and files, the
rules the app takes from the package, and the shape of diachestxr.web itself (nothing loads
at import, small functions, no import cycles)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from diachestxr.labels import NIH_LABELS
from diachestxr.web import views
from tests.conftest import ROOT

WEB = ROOT / "diachestxr" / "web"
MAX_FUNCTION_LINES = 60


def _diagnosis_result(probs: dict[str, float], thresholds: dict[str, float]) -> dict:
    from diachestxr.inference import findings_at

    probs = dict(sorted(probs.items(), key=lambda kv: -kv[1]))
    return {"task": "diagnosis", "probabilities": probs, "thresholds": thresholds,
            "findings": findings_at(probs, thresholds), "explained": list(probs)[:3]}


@pytest.fixture()
def diagnosis() -> dict:
    probs = {label: 0.05 + 0.06 * i for i, label in enumerate(NIH_LABELS)}  # Hernia highest
    thresholds = dict.fromkeys(NIH_LABELS, 0.5)
    thresholds["Pleural_Thickening"] = 0.9  # 0.77: not a finding at its own threshold
    return _diagnosis_result(probs, thresholds)


# ------------------------------------------------------------------------ the rules
def test_findings_are_the_labels_at_or_above_their_threshold_furthest_above_first():
    from diachestxr.inference import findings_at

    probs = {"a": 0.4, "b": 0.9, "c": 0.5, "d": 0.5}
    assert findings_at(probs, {"a": 0.5, "b": 0.95, "c": 0.5, "d": 0.1}) == ["d", "c"]
    assert findings_at(probs, dict.fromkeys(probs, 0.0)) == ["b", "c", "d", "a"]
    assert findings_at(probs, dict.fromkeys(probs, 1.0)) == []


def test_rethresholding_in_the_app_uses_the_package_rule(diagnosis):
    from diachestxr.web.service import Service

    state = {"result": diagnosis, "cams": {}, "original": ""}
    lower = Service.rethreshold(state, dict.fromkeys(NIH_LABELS, 0.6))
    assert lower["result"]["findings"] == [l for l, p in diagnosis["probabilities"].items()
                                           if p >= 0.6]
    assert diagnosis["findings"] != lower["result"]["findings"]  # the state is a new one
    assert set(lower["result"]["thresholds"].values()) == {0.6}


def test_headline_auroc_reads_the_structured_metrics():
    from diachestxr.card import headline_auroc

    assert headline_auroc(None) is None
    assert headline_auroc({"per_class": {}, "macro_auroc": 0.61}) == 0.61
    assert headline_auroc({"per_label": {}, "mean_auroc": 0.8}) == 0.8
    broad = {"per_label": {}, "mean_auroc": 0.8,
             "by_source_group": {"broad": {"n": 56, "mean_auroc": 0.6}}}
    assert headline_auroc(broad) == 0.6


def test_card_headings_are_demoted_outside_code_fences():
    from diachestxr.card import demote_headings

    card = "# Title\ntext\n## Part\n```bash\n# a comment\n```\n### Deep"
    assert demote_headings(card) == "## Title\ntext\n### Part\n```bash\n# a comment\n```\n#### Deep"
    assert demote_headings(card, levels=2).splitlines()[0] == "### Title"


# --------------------------------------------------------------------------- views
def _info(**kw) -> views.ModelInfo:
    return views.ModelInfo(**{"arch": "densenet121", "source": "bundled",
                              "location": "bundled with the app", **kw})


def test_model_markdown_names_the_model_leads_with_its_outlook_and_warns_when_weak():
    outlook = ("On hospitals it never saw: AUROC 0.84-0.97.", "Its pooled test split: 0.99.")
    plain = views.model_markdown("screening", _info(arch="alexnet", outlook=outlook,
                                                    stranger_auroc=0.84))
    assert "**AlexNet**" in plain and "the checkpoint bundled with the app" in plain
    assert "<b>How far to trust it:</b> On hospitals it never saw" in plain and "⚠️" not in plain
    assert plain.index("never saw") < plain.index("pooled")  # the stranger's figure leads
    weak = views.model_markdown("diagnosis", _info(stranger_auroc=0.63))
    assert "Weak model" in weak and "0.63" in weak
    assert "Weak model" not in views.model_markdown("diagnosis", _info(stranger_auroc=0.7))
    hub = views.model_markdown("screening", _info(source="hub", location="me/models@v1"))
    assert "the Hugging Face Hub (`me/models@v1`)" in hub


def test_every_answer_carries_the_disclaimer_its_outlook_and_its_warnings():
    note = views.trust_note(_info(outlook=("On hospitals it never saw: AUROC 0.84-0.97.", "x")))
    assert "not a diagnosis" in note and "AUROC 0.84-0.97" in note and "x" not in note[-5:]
    assert "not a diagnosis" in views.trust_note(None)
    result = {"label": "Normal", "confidences": {"COVID-19": 0.1, "Pneumonia": 0.2, "Normal": 0.7},
              "warnings": ["Low resolution: the image is 48 x 48 px <small>"]}
    caption = views.screening_caption(result, note)
    assert "⚠️ Low resolution: the image is 48 x 48 px &lt;small&gt;" in caption
    assert "AUROC 0.84-0.97" in caption
    assert views.warning_lines({"warnings": []}) == ""


def test_the_outlook_of_the_bundled_models_leads_with_a_strangers_film():
    from diachestxr.card import outlook, stranger_auroc
    from diachestxr.config import CheckpointConfig
    from diachestxr.weights import BUNDLED_DIR

    screening, diagnosis = (CheckpointConfig.read(BUNDLED_DIR / f"{task}.json")
                            for task in ("screening", "diagnosis"))
    first = outlook(screening)[0]
    assert first.startswith("Trained without one of") and "AUROC of 0." in first
    assert "pooled" in outlook(screening)[-1]
    broad = diagnosis.test_metrics["by_source_group"]["broad"]["mean_auroc"]
    assert f"mean AUROC of {broad:.2f}" in outlook(diagnosis)[0]
    assert stranger_auroc(diagnosis) == broad  # below 0.7: the tab warns
    held = [e["against_unseen_adults"]["covid19_vs_non_covid19_auroc"]
            for r in screening.leave_one_hospital_out for e in r["by_source"].values()]
    assert stranger_auroc(screening) == min(held)


def test_the_bundled_screening_card_and_header_lead_with_hospitals_it_never_saw():
    from diachestxr.inference import Predictor

    with Predictor(tasks=["screening"], gate="off") as predictor:
        held_out = predictor.info("screening")["held_out_hospitals"]
        card = predictor.model_card("screening")
    assert len(held_out) >= 2 and all(0.5 < v <= 1 for v in held_out.values())
    assert card.index("Hospitals it never saw") < card.index("Test split")


def test_a_model_that_is_not_loaded_says_why():
    text = views.tab_heading("screening", None, "screening.safetensors missing")
    assert text.startswith(views.TAB_TITLES["screening"])
    assert "model is not loaded.** screening.safetensors missing" in text


def test_diagnosis_table_marks_findings_and_escapes(diagnosis):
    table = views.diagnosis_table(diagnosis)
    assert table.count("<tr class='hit'>") == len(diagnosis["findings"]) > 0
    assert table.count("<tr class=''>") == 14 - len(diagnosis["findings"])
    rows = table.split("<tbody>")[1].split("</tr>")
    assert "Hernia" in rows[0]  # most probable first
    assert "Pleural Thickening" in table and "Pleural_Thickening" not in table
    assert "left:90.0%" in table  # its threshold's tick
    odd = _diagnosis_result({"<b>x</b>": 0.9}, {"<b>x</b>": 0.5})
    assert "<b>x</b>" not in views.diagnosis_table(odd)


def test_a_probability_never_reads_on_the_wrong_side_of_its_threshold():
    """Probability and threshold share their decimals, as few as keep the call readable: a
    finding at 29.9 % against 29.68 % once read "29.9%" against "30%"."""
    near = _diagnosis_result({"Pneumonia": 0.2990, "Effusion": 0.2960, "Mass": 0.71},
                             {"Pneumonia": 0.2968, "Effusion": 0.2968, "Mass": 0.5})
    assert near["findings"] == ["Mass", "Pneumonia"]
    assert views.against_threshold(near, "Pneumonia") == ("30%", "30%")  # at or above: a finding
    assert views.against_threshold(near, "Effusion") == ("29.6%", "29.7%")  # not at 30% and 30%
    assert views.against_threshold(near, "Mass") == ("71%", "50%")
    table = views.diagnosis_table(near)
    assert "<td class='num'>29.9%</td><td class='num thrnum'>29.7%</td>" in table
    assert "<td class='num'>29.6%</td><td class='num thrnum'>29.7%</td>" in table
    assert "**Pneumonia** 30% (threshold 30%)" in views.diagnosis_summary(near)
    assert views.against_threshold({**near, "probabilities": {**near["probabilities"],
                                    "Effusion": 0.29679}}, "Effusion") == ("29.679%", "29.680%")


def test_diagnosis_summary_says_what_a_finding_means(diagnosis):
    summary = views.diagnosis_summary(diagnosis, specificity=0.95)
    assert summary.startswith(f"**{len(diagnosis['findings'])} findings:** **Hernia** 83% (threshold 50%)")
    assert "95% of validation radiographs without the label stay below it" in summary
    prevalence = dict.fromkeys(NIH_LABELS, 0.1)
    worded = views.diagnosis_summary(diagnosis, 0.95, prevalence, trust="<span>note</span>")
    assert "**Hernia** 83% (8.3x its usual rate, threshold 50%)" in worded
    assert worded.index("findings:") < worded.index("<span>note</span>")
    one = {**diagnosis, "thresholds": dict.fromkeys(NIH_LABELS, 0.5)}
    assert "at least 0.50 (one threshold for every label)" in views.diagnosis_summary(one)
    none = _diagnosis_result(diagnosis["probabilities"], dict.fromkeys(NIH_LABELS, 0.99))
    assert none["findings"] == []
    assert views.diagnosis_summary(none).startswith("**No finding above its threshold.** "
                                                    "Closest: **Hernia** 83% (threshold 99%)")
    assert "own label's threshold" in views.operating_point(diagnosis["thresholds"], None)
    table = views.diagnosis_table(diagnosis, prevalence)
    assert "8.3× usual" in table
    assert "× usual" not in views.diagnosis_table(diagnosis)  # a checkpoint without the rates


def test_captions_and_picker(diagnosis):
    top = next(iter(diagnosis["probabilities"]))
    assert views.short_caption(diagnosis, top) == "▲ Hernia 83%"
    assert views.short_caption(diagnosis, "Atelectasis", empty=True) == "Atelectasis 5% · empty map"
    choices = views.pick_choices(diagnosis, empty=["Atelectasis"])
    assert [name for _, name in choices] == list(diagnosis["probabilities"])
    assert ("Atelectasis 5% · empty map", "Atelectasis") in choices
    assert views.label_choices(["Pleural_Thickening"]) == [("Pleural Thickening", "Pleural_Thickening")]


def test_screening_views_explain_an_operating_point_call():
    result = {"label": "COVID-19", "confidences": {"COVID-19": 0.45, "Pneumonia": 0.5,
                                                   "Normal": 0.05},
              "radiograph_check": {"score": 0.98, "threshold": 0.5}}
    caption = views.screening_caption(result)
    assert caption.startswith("Heatmap for **COVID-19**, the predicted class (45%; called "
                              "COVID-19 from its operating point, although Pneumonia")
    assert "Radiograph check: passed, score 0.98" in caption
    assert views.called_note({**result, "label": "Pneumonia"}) == ""
    assert "The predicted class is **COVID-19**" in views.class_caption(result, "Normal")
    value = views.label_value(result)
    assert value["label"] == "COVID-19"  # the called class, not the arg-max
    assert [c["label"] for c in value["confidences"]] == ["Pneumonia", "COVID-19", "Normal"]
    assert views.check_line({"label": "Normal"}) == ""


def test_failure_and_examples_text_are_escaped():
    assert views.failure_markdown("a <script> b") == "**Cannot analyse this file.** a &lt;script&gt; b"

    class E:  # an Example's fields the credits use
        def __init__(self, label, source, url):
            self.label, self.source, self.license, self.url = label, source, "CC BY", url

    raw = "https://raw.githubusercontent.com/owner/repo/main/x.png"
    text = views.examples_credits([E("Pleural_Thickening", "NIH", "https://nih.gov/a.png"),
                                   E("<i>", "Repo", raw)])
    assert "1. Pleural Thickening; 2. &lt;i&gt;." in text
    assert "[NIH](https://nih.gov/a.png) (CC BY); [Repo](https://github.com/owner/repo)" in text


# ------------------------------------------------------------------ session, files
def test_result_files_make_their_folder_on_first_use_and_drop_old_ones(tmp_path, monkeypatch):
    """Expired folders go oldest first, from the list of folders made (no scan of the
    folder: constant cost however many results there are); names never carry the upload's."""
    from diachestxr.web import session
    from diachestxr.web.session import ResultFiles

    files = ResultFiles(tmp_path / "results", ttl_s=60)
    assert not (tmp_path / "results").exists()
    now = time.time()
    monkeypatch.setattr(session.time, "time", lambda: now)
    first = Path(files.json({"task": "diagnosis", "file": "upload-0123456789ab"}))
    assert re.fullmatch(r"diachestxr-diagnosis-[0-9a-f]{16}\.json", first.name) and first.is_file()
    now += 30
    second = Path(files.jpeg(np.zeros((8, 8, 3), np.uint8)))
    monkeypatch.setattr(session.Path, "iterdir", lambda self: pytest.fail("the folder was scanned"))
    now += 40  # the first is 70 s old, the second 40 s
    third = Path(files.jpeg(np.zeros((8, 8, 3), np.uint8)))
    assert not first.exists() and second.is_file() and third.is_file()


def test_results_of_dead_servers_are_swept_and_live_ones_kept(tmp_path):
    from diachestxr.web.session import sweep_stale_folders

    dead, alive, foreign = (tmp_path / f"diachestxr-results-{n}" for n in
                            ("999999999-x", f"{os.getpid()}-y", "old-style"))
    for folder in (dead, alive, foreign):
        (folder / "sub").mkdir(parents=True)
    other = tmp_path / "someone-else"
    other.mkdir()
    sweep_stale_folders(tmp_path)
    assert alive.exists() and other.exists() and not dead.exists() and not foreign.exists()


def test_result_files_are_removed_at_exit(tmp_path):
    """The folder is registered for removal at exit: Ctrl-C and SIGTERM (web.launch turns it
    into Ctrl-C) both end in a normal exit."""
    code = ("from diachestxr.web.session import ResultFiles\n"
            "f = ResultFiles(); print(f.jpeg(__import__('numpy').zeros((8, 8), 'uint8')))")
    proc = _run(code, TMPDIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(tmp_path)
    assert not list(tmp_path.glob("diachestxr-results-*"))


def test_the_session_cookie_and_the_file_route():
    """Every client gets a well-formed session cookie (partitioned over HTTPS); a bound result
    file answers only to its owner's cookie; an unbound file and other routes answer anyone."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from diachestxr.web.binding import COOKIE, SessionFiles

    mine, theirs = "A" * 22, "B" * 22
    owners = {"0123456789abcdef": mine}
    app = Starlette(routes=[Route("/{rest:path}", lambda request: PlainTextResponse("ok"))],
                    middleware=[Middleware(SessionFiles, owner_of=owners.get)])
    client = TestClient(app)

    def get(url: str, cookie: str | None = None, headers: dict | None = None):
        client.cookies.clear()  # each call as a new client, unless it brings a cookie
        return client.get(url, headers={**(headers or {}), **({"cookie": cookie} if cookie else {})})

    def token() -> str:
        return re.fullmatch(rf"{COOKIE}=([A-Za-z0-9_-]{{22}}); Path=/; HttpOnly; SameSite=Lax",
                            get("/").headers["set-cookie"])[1]

    assert token() != token()
    for proxy in ({"x-forwarded-proto": "https"}, {"x-forwarded-proto": "https, http"},
                  {"forwarded": "for=1.2.3.4;proto=https"}):
        https = get("/", headers=proxy).headers["set-cookie"]
        assert "Secure" in https and "Partitioned" in https and "SameSite=None" in https
    bound = "/gradio_api/file=/tmp/gradio/5e3a/heatmap-0123456789abcdef.jpg"
    assert get(bound, f"{COOKIE}={mine}").status_code == 200
    # any spelling Gradio would serve the file by: its aliases, and paths it normalises
    for url in (bound, bound + "/", bound + "/.", bound + "//", bound + "/x/..",
                bound.replace("file=", "file/"), bound.replace("/gradio_api", "")):
        for cookie in (f"{COOKIE}={theirs}", None, f"{COOKIE}=not-a-token"):
            assert get(url, cookie).status_code == 404, (url, cookie)
    assert get("/").headers["cache-control"] == "private, no-store"  # the cookie's response
    assert get("/gradio_api/file=/tmp/gradio/5e3a/other-fedcba9876543210.jpg").status_code == 200
    with_cookie = get("/config", f"{COOKIE}={mine}")
    assert with_cookie.status_code == 200 and "set-cookie" not in with_cookie.headers


def test_a_result_file_records_the_session_that_made_it(tmp_path, monkeypatch):
    """A file made inside a request with the cookie is bound to it; outside one, or by an MCP
    tool call, it is not; the binding outlives the file as long as Gradio's copy may."""
    from types import SimpleNamespace

    from gradio.context import LocalContext

    from diachestxr.web import session
    from diachestxr.web.binding import COOKIE, FILE_ID
    from diachestxr.web.session import ResultFiles

    files = ResultFiles(tmp_path, ttl_s=60)
    token = "C" * 22
    unbound = files.path("label.json")
    LocalContext.request.set(SimpleNamespace(headers={"cookie": f"{COOKIE}={token}"}))
    try:
        bound = files.path("heatmap.jpg")
        LocalContext.request.set(SimpleNamespace(headers={"cookie": f"{COOKIE}={token}",
                                                          "x-gradio-user": "mcp"}))
        tool = files.path("heatmap.jpg")
    finally:
        LocalContext.request.set(None)
    def owner(path: Path) -> str | None:
        file_id, = FILE_ID.findall(str(path))
        return files.owner(file_id)

    assert owner(bound) == token and bound.name != tool.name
    assert owner(unbound) is None and owner(tool) is None
    now = time.time() + files.ttl_s + 1  # the file is gone, Gradio's copy may not be
    monkeypatch.setattr(session.time, "time", lambda: now)
    files.path("x.jpg")
    assert owner(bound) == token
    now += files.bound_s
    files.path("x.jpg")
    assert owner(bound) is None


def test_a_redraw_after_the_files_expired_says_so(tmp_path):
    from diachestxr.web.session import STATE_MAP_SIDE, ResultExpired, ResultFiles, draw

    files = ResultFiles(tmp_path)
    import cv2

    original = str(files.path("radiograph.png"))
    cv2.imwrite(original, np.full((40, 30), 128, np.uint8))
    cam = np.zeros((STATE_MAP_SIDE, STATE_MAP_SIDE), np.uint8)
    cam[10:20, 10:20] = 255
    state = {"original": original, "cams": {"Normal": cam}, "result": {}}
    from PIL import Image

    first = draw(state, "Normal", 0.5, files)
    with Image.open(first) as im:
        assert im.size == (30, 40) and im.mode == "RGB"
    assert draw(state, "Normal", 0.5, files) == first  # drawn once: the API's and the page's
    with Image.open(draw(state, "Normal", 0.5, files, side=20)) as im:
        assert im.size == (15, 20)  # a thumbnail
    Path(original).unlink()
    with pytest.raises(ResultExpired, match="upload the image again"):
        draw(state, "Normal", 0.6, files)


def test_the_service_without_the_radiograph_check(random_predictor, examples_dir, tmp_path):
    """A Predictor with the check off (e.g. a caller's own) gives results without its verdict."""
    from diachestxr.web.service import Service
    from diachestxr.web.session import ResultFiles

    service = Service({"diagnosis": random_predictor}, files=ResultFiles(tmp_path))
    result, gallery, state = service.diagnose(str(examples_dir / "00001968_000.jpg"))
    assert "radiograph_check" not in result and len(gallery) == 3
    assert result["model"]["location"].startswith("local folder ")
    assert all(Path(path).is_relative_to(tmp_path) for path, _ in gallery)
    import gradio as gr

    with pytest.raises(gr.Error, match="screening model is not available"):
        service.screen(str(examples_dir / "4fed5061.jpg"))


def test_the_result_json_is_made_for_the_download_button_not_for_the_api(
        random_predictor, examples_dir, tmp_path):
    """The API returns the result and its overlays; the page's view step writes the JSON
    file its download button offers: the result as returned, named without the upload's."""
    import json

    from diachestxr.web.diagnosis import DiagnosisUI
    from diachestxr.web.service import Service
    from diachestxr.web.session import ResultFiles

    service = Service({"diagnosis": random_predictor}, files=ResultFiles(tmp_path))
    outputs = service.diagnose(str(examples_dir / "00001968_000.jpg"))
    assert len(outputs) == 3 and not list(tmp_path.rglob("*.json"))
    result, _, state = outputs
    button = DiagnosisUI(service).view(state)[2]
    path = Path(button.value["path"])
    assert re.fullmatch(r"diachestxr-diagnosis-[0-9a-f]{16}\.json", path.name)
    assert json.loads(path.read_text()) == result and button.interactive


def test_the_session_radiograph_is_written_only_when_a_view_reads_it(
        random_predictor, examples_dir, tmp_path, monkeypatch):
    """An answer (what an API call gets) writes no radiograph; the page's first view writes
    it, once; past KEPT_RADIOGRAPHS unread ones, the oldest session's result has expired."""
    import gradio as gr

    from diachestxr.web import session
    from diachestxr.web.screening import ScreeningUI
    from diachestxr.web.service import Service

    service = Service({"screening": random_predictor}, files=session.ResultFiles(tmp_path))
    image = str(examples_dir / "4fed5061.jpg")
    *_, state = service.screen(image)
    assert not list(tmp_path.rglob("radiograph-*.png"))
    ScreeningUI(service).view(state, 0.45)  # the slider shows the radiograph
    written = list(tmp_path.rglob("radiograph-*.png"))
    assert [str(p) for p in written] == [state["original"]]
    assert session.radiograph(state).shape == (419, 512)

    monkeypatch.setattr(session, "KEPT_RADIOGRAPHS", 2)
    states = [service.screen(image)[-1] for _ in range(3)]
    assert session.radiograph(states[-1]).shape == (419, 512)
    with pytest.raises(session.ResultExpired):
        session.radiograph(states[0])
    session._drop_unread(older_than=time.monotonic())  # what housekeeping does after a minute
    with pytest.raises(session.ResultExpired):
        session.radiograph(states[1])
    with pytest.raises(gr.Error, match="expired"):  # the page's slider says so, too
        service.compare(states[1], "Normal", 0.45)
    assert len(list(tmp_path.rglob("radiograph-*.png"))) == 2  # the two that were read


def test_the_heap_is_trimmed_once_the_server_is_idle_not_after_each_answer(monkeypatch):
    from diachestxr.web import session

    trims = []
    monkeypatch.setattr(session, "_malloc_trim", lambda: trims.append)
    monkeypatch.setattr(session, "IDLE_S", 0.3)
    for _ in range(5):  # a burst of answers: no trim between them
        session.release_memory()
        time.sleep(0.05)
    assert trims == []
    deadline = time.monotonic() + 5
    while not trims and time.monotonic() < deadline:
        time.sleep(0.05)
    assert trims[:1] == [0]  # once idle (the once-a-minute round of an idle server may add one)


def test_an_upload_is_deleted_once_answered_and_a_failure_is_not_read_twice(
        random_predictor, examples_dir, tmp_path, monkeypatch):
    """Uploads (files in Gradio's upload folder) go when their answer is computed, answered
    or refused; sample images stay. The failure view repeats the kept message."""
    import gradio as gr

    from diachestxr.web import views
    from diachestxr.web.service import Service
    from diachestxr.web.session import ResultFiles

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    upload = tmp_path / "uploads" / "0af3" / "DOE^JOHN.jpg"
    upload.parent.mkdir(parents=True)
    sample = examples_dir / "00001968_000.jpg"
    upload.write_bytes(sample.read_bytes())
    service = Service({"diagnosis": random_predictor}, files=ResultFiles(tmp_path / "results"))
    result, *_, state = service.diagnose(str(upload))
    assert not upload.exists() and not upload.parent.exists() and sample.exists()
    assert result["file"].startswith("upload-") and "DOE" not in str(result)
    # a new map method: the session's copy of the radiograph, the same id
    again, *_ = service.remap("diagnosis", state, True, 0.5, 0.5, "gradcam++")
    assert again["file"] == result["file"] and again["method"] == "gradcam++"
    bad = tmp_path / "uploads" / "77aa" / "DOE^JANE.png"
    bad.parent.mkdir()
    bad.write_text("not an image")
    with pytest.raises(gr.Error):
        service.diagnose(str(bad))
    assert not bad.exists()
    assert "not a recognised image" in service.failure("diagnosis", str(bad))
    assert service.failure("diagnosis", str(bad)) == views.INTERNAL_ERROR  # told once
    # Gradio's cached copy of a sample image serves every visitor: it stays
    shared = tmp_path / "uploads" / "9e1c" / "sample.jpg"
    shared.parent.mkdir()
    shared.write_bytes(sample.read_bytes())
    service.shared_files = frozenset({str(shared)})
    service.diagnose(str(shared))
    service.diagnose(str(shared))
    assert shared.exists()


def test_leftovers_of_cut_off_uploads_are_swept_from_a_private_gradio_folder(tmp_path, monkeypatch):
    from diachestxr.web import session

    private = tmp_path / f"{session.GRADIO_PREFIX}{os.getpid()}-abc"
    private.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(private))
    monkeypatch.setattr(session, "_last_partial_sweep", [0.0])
    old, fresh, kept = private / "tmpold123", private / "tmpnew456", private / "0af3"
    old.write_bytes(b"x" * 1000)  # a partial upload, cut off two minutes ago
    fresh.write_bytes(b"")  # an upload in progress
    kept.mkdir()
    two_minutes_ago = time.time() - 120
    os.utime(old, (two_minutes_ago, two_minutes_ago))
    session.forget_upload(tmp_path / "elsewhere.png")
    assert not old.exists() and fresh.exists() and kept.exists()


# --------------------------------------------------------------- the package's shape
def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1", **env})


def test_importing_the_app_loads_nothing(tmp_path):
    """`import app` (what Spaces does first): no Gradio, no torch, no model, no temp folder."""
    proc = _run("import sys, app\n"
                "heavy = [m for m in ('gradio', 'torch', 'cv2', 'diachestxr.inference') if m in sys.modules]\n"
                "print(heavy)", TMPDIR=str(tmp_path))
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    assert not list(tmp_path.iterdir())


def test_serve_help_loads_nothing():
    proc = _run("import sys\nfrom diachestxr.cli import build_parser\n"
                "try:\n    build_parser().parse_args(['serve', '--help'])\nexcept SystemExit:\n    pass\n"
                "print([m for m in ('gradio', 'torch') if m in sys.modules])")
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("[]"), proc.stdout + proc.stderr
    assert "--share" in proc.stdout


def _modules(package: Path) -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in package.glob("*.py")}


def test_web_functions_are_short():
    long = [f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for name, tree in _modules(WEB).items() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long


def test_web_modules_import_no_cycle():
    """The import graph between diachestxr.web's modules (run-time imports, at any depth of
    the module) has no cycle."""
    modules = _modules(WEB)
    graph = {name: set() for name in modules}
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [a.name for a in node.names]
                graph[name] |= {t.split(".")[0] for t in targets if t.split(".")[0] in modules}

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        for dep in graph[name]:
            visit(dep, (*path, name))

    for name in graph:
        visit(name, ())
