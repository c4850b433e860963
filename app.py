"""DiaChestXR web app (Gradio 6): chest X-ray screening and diagnosis with Grad-CAM.

Wiring only: models, labels, weights, image reading and explanations all come from the
`diachestxr` package. `python app.py` serves on 127.0.0.1:7860 (GRADIO_SERVER_NAME and
GRADIO_SERVER_PORT override it; Hugging Face Spaces sets them). The module-level `demo` is
what Spaces and `gradio app.py` pick up.

API (see README): `/screen` and `/diagnose`, e.g.
    Client(url).predict(handle_file("xray.png"), api_name="/screen")
Research demo, not for clinical use.
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

# No usage telemetry from a medical-imaging demo unless the deployer turns it on.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import cv2  # noqa: E402
import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from diachestxr import ImageReadError, Predictor, WeightsError, __version__  # noqa: E402
from diachestxr.card import model_card  # noqa: E402
from diachestxr.examples import Example, list_examples  # noqa: E402
from diachestxr.explain import CAM_METHODS, DEFAULT_ALPHA, DEFAULT_METHOD, overlay  # noqa: E402
from diachestxr.inference import TOP_FINDINGS  # noqa: E402
from diachestxr.io import MAX_FILE_BYTES  # noqa: E402
from diachestxr.registry import PNG_COMPRESS_LEVEL, TASKS, get_spec  # noqa: E402

log = logging.getLogger("diachestxr.app")
if __name__ == "__main__":  # before the models load, so their source is logged
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

DISCLAIMER = "Research demo — not for clinical use."
ARCH_NAMES = {"alexnet": "AlexNet", "densenet121": "DenseNet-121"}
SOURCE_NAMES = {"local": "a local folder", "hub": "the Hugging Face Hub",
                "bundled": "the checkpoint bundled with the app"}
QUEUE_CONCURRENCY = 4  # model calls per event at once (torch runs them side by side)
QUEUE_MAX_SIZE = 64  # beyond this, new requests are told the queue is full instead of waiting
RESULT_TTL_S = 3600
# A session's state (its last result) is dropped this long after it was last written (Gradio
# restarts the clock at each write; a closed tab's state goes after an hour). A redraw whose
# radiograph file RESULT_TTL_S already removed says the result expired.
STATE_TTL_S = 1800
STATE_MAP_SIDE = 64
WEAK_AUROC = 0.7  # below this test AUROC the tab warns that its outputs are mostly wrong
NO_RESULT = "Upload an image (or click a sample) to see the 14 probabilities."
TAB_TITLES = {"screening": "**COVID-19, Pneumonia or Normal** from one frontal chest radiograph.",
              "diagnosis": "**The 14 NIH ChestX-ray14 findings** (several may apply) from one "
                           "frontal chest radiograph."}
COMPARE_HINT = ("Left of the handle: the radiograph; right: the heatmap (drag the handle to "
                "compare). Warm colours mark the regions that raised this class's score.")
COMPARE_LABEL = "Radiograph | heatmap"
METHOD_NAMES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "xgradcam": "XGrad-CAM",
                "hirescam": "HiResCAM", "layercam": "LayerCAM"}


# ------------------------------------------------------------------------- loaded once
def _load_predictors() -> tuple[dict[str, Predictor], dict[str, str]]:
    """One Predictor per task, so a missing checkpoint disables one tab, not the app.
    A WeightsError is kept and shown: the app never falls back to random weights."""
    predictors, errors = {}, {}
    for task in TASKS:
        try:
            predictors[task] = Predictor(tasks=[task])
        except WeightsError as e:
            log.error("%s model not loaded: %s", task, e)
            errors[task] = str(e)
    return predictors, errors


PREDICTORS, LOAD_ERRORS = _load_predictors()
EXAMPLES: list[Example] = list_examples()
_RESULTS_DIR = Path(tempfile.mkdtemp(prefix="diachestxr-results-"))


# ------------------------------------------------------------------------------ helpers
def _predictor(task: str) -> Predictor:
    if task not in PREDICTORS:
        raise gr.Error(f"The {task} model is not available on this server: {LOAD_ERRORS[task]}",
                       title="Model not loaded", print_exception=False)
    return PREDICTORS[task]


def _path(image: Any) -> str:
    if image is None:
        raise gr.Error("Upload a chest X-ray first (PNG, JPEG or DICOM).", title="No image",
                       print_exception=False)
    return str(image)


@contextmanager
def _user_errors(name: str) -> Iterator[None]:
    """Our reader's and Predictor's messages go to the user as they are; anything else is
    logged here with its traceback and reported without one."""
    try:
        yield
    except gr.Error:
        raise
    except (ImageReadError, ValueError) as e:
        raise gr.Error(str(e), title="Cannot analyse this file", print_exception=False) from None
    except Exception:
        log.exception("analysing %s failed", name)
        raise gr.Error(f"{name}: analysis failed because of an internal error (logged on the "
                       "server). Try another image.", title="Internal error",
                       print_exception=False) from None


def _session_state(r, result: dict) -> dict:
    """What a session keeps, so a threshold, opacity or label change redraws without the
    model: the result, every map as uint8 at STATE_MAP_SIDE (the maps come from a 7x7 or
    13x13 grid: nothing is lost; 4 KB each) and the radiograph as a PNG on disk (its path),
    about 60 KB per session in memory rather than the 1-2 MB of the image and 224 px maps."""
    cams = {label: cv2.resize(np.rint(np.clip(e.cam, 0.0, 1.0) * 255).astype(np.uint8),
                              (STATE_MAP_SIDE, STATE_MAP_SIDE), interpolation=cv2.INTER_AREA)
            for label, e in r.explanations.items()}
    return {"original": _png(r.image, "radiograph.png"), "cams": cams, "result": result}


def _overlay(state: dict, label: str, opacity: float) -> str:
    image = cv2.imread(state["original"], cv2.IMREAD_GRAYSCALE) if Path(state["original"]).is_file() else None
    if image is None:  # the result files' time-to-live removed it
        raise gr.Error("This result has expired; upload the image again.", title="Result expired")
    return _png(overlay(image, state["cams"][label].astype(np.float32) / 255.0, float(opacity)))


def _png(rgb: np.ndarray, name: str = "heatmap.png") -> str:
    """An image (an overlay, or the radiograph) as a PNG file, encoded once, at display size
    (results keep the image at most 1024 px on its long side), at a fast compression level."""
    from PIL import Image

    out = _result_path(name)
    Image.fromarray(rgb).save(out, compress_level=PNG_COMPRESS_LEVEL)
    return str(out)


def _result_path(name: str) -> Path:
    """A fresh file path for a result (in a folder of its own, so a download keeps the
    name); folders older than RESULT_TTL_S go first, so a long-running server stays small."""
    now = time.time()
    for old in _RESULTS_DIR.iterdir():
        try:
            expired = now - old.stat().st_mtime > RESULT_TTL_S
        except FileNotFoundError:  # another worker removed it just now
            continue
        if expired:
            shutil.rmtree(old, ignore_errors=True)
    folder = _RESULTS_DIR / uuid.uuid4().hex[:16]
    folder.mkdir()
    return folder / name


def _model_summary(task: str) -> dict:
    info = PREDICTORS[task].info(task)
    return {"arch": info["arch"], "weights": info["source"], "location": info["location"]}


def _write_json(result: dict) -> str:
    """The downloadable result: <image stem>-<task>.json."""
    stem = Path(result.get("file") or "image").stem or "image"
    out = _result_path(f"{stem}-{result['task']}.json")
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return str(out)


def _pretty(label: str) -> str:
    return label.replace("_", " ")


# ----------------------------------------------------------------------------- screening
def screen(image: str, opacity: float = DEFAULT_ALPHA, method: str = DEFAULT_METHOD):
    """Screen one chest X-ray (PNG, JPEG or DICOM) for COVID-19 / Pneumonia / Normal.

    method: the map method (gradcam, gradcam++, xgradcam, hirescam, layercam).
    Returns (result, overlay, result_file): result = {"task", "file", "label",
    "confidences" {class: p, summing to 1}, "explained", "method", "model", "version",
    "disclaimer"}; overlay = the heatmap of the predicted class on the image (PNG, the
    input's aspect, at most 1024 px); result_file = the result as a JSON file.
    """
    predictor = _predictor("screening")
    path = _path(image)
    name = Path(path).name
    method = method or DEFAULT_METHOD
    with _user_errors(name):
        # all three maps cost about as much as one: any class the user picks is ready
        r = predictor.screen(path, explain="all", alpha=float(opacity), method=method)
    result = {**r.to_dict(), "file": name, "explained": r.label, "method": method,
              "model": _model_summary("screening"), "version": __version__,
              "disclaimer": DISCLAIMER}
    return result, _png(r.overlay), _write_json(result), _session_state(r, result)


def _method_choice(prefix: str) -> gr.Dropdown:
    return gr.Dropdown(choices=[(METHOD_NAMES.get(m, m), m) for m in CAM_METHODS],
                       value=DEFAULT_METHOD, label="Map method", elem_id=f"{prefix}-method",
                       info="Grad-CAM, or another gradient-based class activation map")


def _screen_again(image: str | None, opacity: float, method: str, state: dict | None):
    """UI only: the map method changed; new maps for the image in the file box."""
    if image is None:
        return gr.skip(), gr.skip(), gr.skip(), state
    return screen(image, opacity, method)


def _screen_clear():
    """UI only: forget the previous image's result (and error)."""
    return (None, None, None, "", None, gr.DownloadButton(value=None, interactive=False),
            gr.Radio(value=None, interactive=False), None, gr.Markdown("", visible=False))


def _compare(state: dict, label: str, opacity: float) -> tuple[str, str]:
    """UI only: (the radiograph, its heatmap for `label`) for a comparison slider, both at
    the result's size. The radiograph's PNG is written once per result; its path is in the
    state."""
    overlay_png = _overlay(state, label, opacity)  # raises if the radiograph's file expired
    return state["original"], overlay_png


def _screen_view(state: dict | None, opacity: float):
    """UI only: the label widget, the class picker and the radiograph beside its heatmap
    after a run."""
    if not state:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), state
    result = state["result"]
    label = result["label"]
    caption = (f"Heatmap for **{label}**, the predicted class "
               f"({result['confidences'][label]:.0%}{_called_note(result)}). "
               + COMPARE_HINT + _check_line(result))
    return (_label_file(result), gr.Radio(value=label, interactive=True), caption,
            gr.DownloadButton(interactive=True), _compare(state, label, opacity), state)


def _label_file(result: dict) -> str:
    """gr.Label's value with the called class as its headline: with a COVID-19 operating
    point the label need not be the most confident class, and a plain {class: p} dict would
    headline the arg-max. (gr.Label reads a .json file holding its own format.)"""
    out = _result_path("label.json")
    confidences = sorted(result["confidences"].items(), key=lambda kv: -kv[1])
    out.write_text(json.dumps({"label": result["label"], "confidences": [
        {"label": c, "confidence": p} for c, p in confidences]}))
    return str(out)


def _check_line(result: dict) -> str:
    """The radiograph check's score, so a user can see how sure the gate was."""
    check = result.get("radiograph_check")
    if not check:
        return ""
    return (f"  \n<span class='dx-legend'>Radiograph check: passed, score {check['score']:.2f} "
            f"(a frontal chest radiograph needs {check['threshold']:.2f} or more).</span>")


def _called_note(result: dict) -> str:
    """Why the label is not the most confident class, when the operating point made it so."""
    top = max(result["confidences"], key=result["confidences"].get)
    if result["label"] == top:
        return ""
    return (f"; called COVID-19 from its operating point, although {top} is more probable"
            if result["label"] == "COVID-19" else
            "; below the COVID-19 operating point, so the more probable of the others")


def _screen_explain(label: str | None, opacity: float, state: dict | None):
    """UI only: the map for any class, redrawn from the maps the last call computed."""
    if not state or not label:
        return gr.skip(), gr.skip(), state
    predicted = state["result"]["label"]
    p = state["result"]["confidences"][label]
    caption = (f"Heatmap for **{label}** ({p:.0%})"
               + (", the predicted class. " if label == predicted else
                  f". The predicted class is **{predicted}**. ")
               + COMPARE_HINT)
    return _compare(state, label, opacity), caption, state


# ----------------------------------------------------------------------------- diagnosis
def _thresholds(calibrated: bool, threshold: float) -> dict[str, float]:
    with _user_errors("thresholds"):
        return _predictor("diagnosis").thresholds(None if calibrated else float(threshold))


def _diagnosis_outputs(state: dict, opacity: float):
    """(result, gallery, result file, state) from what the model computed for this image:
    the table and the gallery share one ranking, the probability."""
    return state["result"], _gallery(state, opacity), _write_json(state["result"]), state


def _gallery(state: dict, opacity: float) -> list[tuple[str, str]]:
    """The overlays of the mapped labels (the most probable), with their captions."""
    result = state["result"]
    return [(_overlay(state, label, opacity),
             _short_caption(result, label, not state["cams"][label].any()))
            for label in result["explained"]]


def _diagnosis_result(state: dict, thresholds: dict[str, float]) -> dict:
    """The API's result for the stored probabilities at these thresholds (no model run)."""
    result = state["result"]
    probs = result["probabilities"]  # most probable first
    return {**result, "thresholds": thresholds,
            "findings": [label for label, p in probs.items() if p >= thresholds[label]]}


def diagnose(image: str, calibrated_thresholds: bool = True, threshold: float = 0.5,
             opacity: float = DEFAULT_ALPHA, method: str = DEFAULT_METHOD):
    """Probabilities of the 14 NIH ChestX-ray14 findings for one chest X-ray.

    calibrated_thresholds: use the checkpoint's per-label thresholds (default); if False,
    `threshold` applies to every label. method: the map method (gradcam, gradcam++,
    xgradcam, hirescam, layercam). Returns (result, overlays, result_file): result =
    {"task", "file", "probabilities" {label: p, most probable first}, "thresholds",
    "findings" [labels at or above threshold, most probable first], "explained" [the
    mapped labels: the most probable], "method", "model", "version", "disclaimer"};
    overlays = heatmaps of the most probable labels (a gallery: [{"image": PNG, "caption":
    ...}]); result_file = the result as JSON.
    """
    path = _path(image)
    name = Path(path).name
    predictor = _predictor("diagnosis")
    method = method or DEFAULT_METHOD
    thresholds = _thresholds(calibrated_thresholds, threshold)
    with _user_errors(name):
        # all 14 maps cost about as much as one: every label the user picks is ready
        r = predictor.diagnose(path, thresholds=thresholds, explain="all", method=method)
    probabilities = dict(sorted(r.probabilities.items(), key=lambda kv: -kv[1]))
    state = _session_state(r, {
        "task": "diagnosis", "file": name, "probabilities": probabilities,
        "explained": list(probabilities)[:TOP_FINDINGS], "method": method,
        "radiograph_check": r.to_dict()["radiograph_check"], "model": _model_summary("diagnosis"),
        "version": __version__, "disclaimer": DISCLAIMER})
    state["result"] = _diagnosis_result(state, thresholds)
    return _diagnosis_outputs(state, opacity)


def _rethreshold(calibrated: bool, threshold: float, opacity: float, state: dict | None):
    """UI only: thresholds changed; new findings from the stored probabilities."""
    if not state:
        return gr.skip(), gr.skip(), gr.skip(), state
    state = {**state, "result": _diagnosis_result(state, _thresholds(calibrated, threshold))}
    return _diagnosis_outputs(state, opacity)


def _short_caption(result: dict, label: str, empty: bool = False) -> str:
    """e.g. "▲ Effusion 71%" (▲: a finding, at or above its threshold). Short: the gallery
    clips long captions on both sides."""
    mark = "▲ " if label in result["findings"] else ""
    note = " · empty map" if empty else ""
    return f"{mark}{_pretty(label)} {result['probabilities'][label]:.0%}{note}"


def _diagnose_again(image: str | None, calibrated: bool, threshold: float, opacity: float,
                    method: str, state: dict | None):
    """UI only: the map method changed; new maps for the image in the file box."""
    if image is None:
        return gr.skip(), gr.skip(), gr.skip(), state
    return diagnose(image, calibrated, threshold, opacity, method)


def _diagnosis_clear():
    """UI only: forget the previous image's result (and error)."""
    return (NO_RESULT, "", None, None, gr.DownloadButton(value=None, interactive=False),
            None, gr.Dropdown(choices=D_PICK_CHOICES), None, gr.Markdown("", visible=False))


def _failure(task: str):
    """UI only: after a failed run, the reason stays on the page beside the upload (the
    toast fades). Recomputed here from the inputs: an event's exception does not reach the
    next event."""
    def explain(image: Any) -> gr.Markdown:
        if task in LOAD_ERRORS:
            text = f"The {task} model is not available on this server: {LOAD_ERRORS[task]}"
        elif image is None:
            text = "Upload a chest X-ray first (PNG, JPEG or DICOM)."
        else:
            try:
                PREDICTORS[task].check(str(image))  # the reader, then the radiograph check
                text = ("The analysis failed because of an internal error (logged on the "
                        "server). Try another image.")
            except ImageReadError as e:
                text = str(e)
        return gr.Markdown(f"**Cannot analyse this file.** {html.escape(text)}", visible=True)
    return explain


def _diagnosis_view(state: dict | None):
    """UI only: the summary line and the table of all 14 probabilities."""
    if not state:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    result = state["result"]
    probs, thr, findings = result["probabilities"], result["thresholds"], result["findings"]
    point = _operating_point(thr)
    if findings:
        plural = "s" if len(findings) > 1 else ""
        summary = (f"**{len(findings)} finding{plural} at the operating point:** "
                   + ", ".join(f"{_pretty(l)} ({probs[l]:.0%})" for l in findings))
    else:
        summary = ("**No finding at the operating point.** Most probable: "
                   + ", ".join(f"{_pretty(l)} ({probs[l]:.0%})" for l in list(probs)[:3]))
    summary += f"  \n<span class='dx-legend'>{point}</span>" + _check_line(result)
    rows = []
    for label, p in probs.items():
        hit = label in findings
        rows.append(
            f"<tr class='{'hit' if hit else ''}'>"
            f"<td class='name'>{'▲ ' if hit else ''}{html.escape(_pretty(label))}</td>"
            f"<td class='bar'><div class='track'>"
            f"<div class='fill' style='width:{p * 100:.1f}%'></div>"
            f"<div class='thr' style='left:{thr[label] * 100:.1f}%'></div></div></td>"
            f"<td class='num'>{p:.1%}</td><td class='num thrnum'>{thr[label]:.2f}</td></tr>")
    table = ("<div class='dx-scroll'><table class='dx-table'><thead><tr><th>Label</th>"
             "<th>Probability</th><th></th><th class='num'>Threshold</th></tr></thead><tbody>"
             + "".join(rows)
             + "</tbody></table></div>"
             "<p class='dx-legend'>▲ bold, orange: a finding (probability at or above its "
             "threshold). The black tick on each bar marks the threshold.</p>")
    # the top-ranked thumbnail highlighted: the slider shows its map
    return summary, table, gr.DownloadButton(interactive=True), gr.Gallery(selected_index=0)


def _operating_point(thresholds: dict[str, float]) -> str:
    """What a finding means with the thresholds in use, in words."""
    if len(set(thresholds.values())) == 1:
        return f"A finding is a probability of at least {next(iter(thresholds.values())):.2f} (one threshold for every label)."
    if "diagnosis" in PREDICTORS:
        config = PREDICTORS["diagnosis"].models["diagnosis"].config
        specificity = (config.get("operating_point") or {}).get("specificity")
        if specificity:
            return (f"A finding scores higher than {specificity:.0%} of the validation radiographs "
                    "without it (its threshold); the probabilities below rank suspicions, they "
                    "are not diagnoses.")
    return "A finding is a probability at or above its label's threshold."


def _diagnosis_pick(label: str | None, opacity: float, state: dict | None):
    """UI only: the radiograph beside the map of the label the user picked (by default the
    most probable one), from the maps already computed. The picker lists every label with
    its caption, most probable first, and names the label shown."""
    if not state:
        return gr.skip(), None, state
    result = state["result"]
    if label not in state["cams"]:
        label = result["explained"][0]
    choices = [(_short_caption(result, name, not state["cams"][name].any()), name)
               for name in result["probabilities"]]
    return gr.Dropdown(choices=choices, value=label), _compare(state, label, opacity), state


def _diagnosis_select(evt: gr.SelectData, opacity: float, state: dict | None):
    """UI only: a click on a gallery thumbnail shows that label beside the radiograph."""
    if not state or evt.index is None:
        return gr.skip(), gr.skip(), state
    return _diagnosis_pick(state["result"]["explained"][evt.index], opacity, state)


def _diagnosis_opacity(label: str | None, opacity: float, state: dict | None):
    """UI only: new overlay opacity, from the maps already computed."""
    if not state:
        return gr.skip(), gr.skip(), state
    _, compare, state = _diagnosis_pick(label, opacity, state)
    return _gallery(state, opacity), compare, state


# ------------------------------------------------------------------------------- layout
def _upload(task: str, action: str, prefix: str):
    """A tab's input column: the file box (taken as a path, read by our reader), its button,
    the box where a refusal stays, and the task's sample images."""
    file = gr.File(label="Chest X-ray (PNG, JPEG or DICOM)", type="filepath", height=170,
                   elem_id=f"{prefix}-file")
    run = gr.Button(action, variant="primary", elem_id=f"{prefix}-run")
    error = gr.Markdown(visible=False, elem_id=f"{prefix}-error", elem_classes=["error-box"])
    return file, run, error, _examples(task, file)


def _model_markdown(task: str) -> str:
    if task in LOAD_ERRORS:
        return f"⚠️ **The {task} model is not loaded.** {LOAD_ERRORS[task]}"
    info = PREDICTORS[task].info(task)
    headline = " · ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in info["headline_metrics"].items() if v is not None)
    where = "" if info["source"] == "bundled" else f" (`{info['location']}`)"
    return (f"Model: **{ARCH_NAMES.get(info['arch'], info['arch'])}** · weights from "
            f"{SOURCE_NAMES.get(info['source'], info['source'])}{where}"
            + (f"  \nOn its test split: {headline} (research data; see *About the model*)"
               if headline else "")
            + (f"  \n⚠️ The screening data confounds disease with age (every COVID-19 image is "
               f"an adult, nearly every other a child), which flatters these scores. On adults "
               f"only: COVID-19 against other adults' radiographs AUROC "
               f"**{adult['covid19_vs_non_covid19_auroc']:.2f}**; adult Normal called Normal "
               f"**{adult['normal']['called_normal']:.0%}**; adult Pneumonia called Normal "
               f"{adult['pneumonia']['called_normal']:.0%}."
               if (adult := (info.get("test_metrics") or {}).get("adult")) else "")
            + (f"  \n⚠️ **Weak model:** a test AUROC of {auroc:.2f} is close to chance (0.5); "
               "its findings are mostly wrong — use this tab to explore the pipeline, not the "
               "image." if (auroc := _test_auroc(info)) is not None and auroc < WEAK_AUROC else ""))


def _test_auroc(info: dict) -> float | None:
    h = info["headline_metrics"]
    return h.get("mean AUROC", h.get("macro AUROC"))


def _model_card(task: str) -> str:
    """The checkpoint's model card, as the Hub shows it (headings nested under the tab)."""
    if task in LOAD_ERRORS:
        return LOAD_ERRORS[task]
    card = model_card(PREDICTORS[task].models[task].config)
    return "\n".join("##" + line if line.startswith("#") else line for line in card.splitlines())


def _source_page(url: str) -> str:
    """A browsable page for a raw file URL (GitHub raw files: the repository)."""
    parts = url.split("/")
    if len(parts) > 4 and parts[2] == "raw.githubusercontent.com":
        return f"https://github.com/{parts[3]}/{parts[4]}"
    return url


def _examples(task: str, file: gr.File) -> gr.Examples | None:
    """Clickable thumbnails of the sample images for `task` (none: no block at all)."""
    items = [e for e in EXAMPLES if e.task == task]
    if not items:
        return None
    # A hidden image column gives the thumbnails; the file column is what gets loaded.
    thumb = gr.Image(type="filepath", visible=False)
    examples = gr.Examples(examples=[[str(e.path), str(e.path)] for e in items],
                           inputs=[thumb, file], visible_columns=[0], cache_examples=False,
                           label="Sample images: click one to analyse it",
                           examples_per_page=12, api_visibility="private",
                           elem_id=f"{task}-examples")
    credits = "; ".join(f"{i}. {html.escape(_pretty(e.label))}" for i, e in enumerate(items, 1))
    sources = {}
    for e in items:
        sources.setdefault((e.source, e.license), []).append(e)
    source_text = "; ".join(f"[{html.escape(src)}]({_source_page(group[0].url)}) ({lic})"
                            for (src, lic), group in sources.items())
    gr.Markdown(f"Dataset labels, left to right: {credits}. Sources: {source_text}.",
                elem_classes=["small"])
    return examples


# What the heatmap colours mean (pytorch-grad-cam draws with OpenCV's JET colour map).
COLOUR_BAR = ("<div class='cbar'><span>low</span><div class='cbar-ramp'></div><span>high</span></div>"
              "<div class='cbar-note'>how much a region raised the score of the class shown; "
              "no colour: an empty map</div>")


def _scroll_js(elem_id: str, whole: bool = False) -> str:
    """UI only, in the browser: bring a result to the top of the window if it starts below
    its middle (on a phone the columns stack and the result lands below the sample images;
    on a wide screen it is already beside the upload and nothing moves); whole=True: bring
    a short element (an error) fully into view if any of it is outside."""
    test = ("r.top < 0 || r.bottom > window.innerHeight" if whole else
            "r.top < 0 || r.top > window.innerHeight / 2")
    block = "nearest" if whole else "start"
    return (f"() => {{ const el = document.getElementById('{elem_id}'); if (!el) return;"
            f" const r = el.getBoundingClientRect(); if ({test})"
            f" el.scrollIntoView({{behavior: 'smooth', block: '{block}'}}); }}")


CSS = """
.cbar { display: flex; align-items: center; gap: 6px; font-size: 0.8em; }
.cbar-ramp { flex: 1; height: 10px; border-radius: 5px; background: linear-gradient(90deg,
    #00007f, #0000ff, #007fff, #00ffff, #7fff7f, #ffff00, #ff7f00, #ff0000, #7f0000); }
.cbar-note { font-size: 0.75em; opacity: 0.75; margin-top: 2px; }
/* comparison sliders: the image starts below the label instead of under it */
.compare .image-container { padding-top: 38px; }
.compare .image-container > .icon-button-wrapper { top: 6px; }
.compare > label[data-testid=block-label] { max-width: calc(100% - 80px); white-space: normal; }
#screen-result, #diagnose-result { scroll-margin-top: 8px; }
/* gallery: one row of thumbnails, as tall as they are (Gradio's "auto" keeps 320 px) */
#diagnose-gallery .grid-wrap { min-height: 0; max-height: none; overflow-y: visible; }
/* gallery thumbnails: the whole caption, under the image's lower edge, not clipped */
#diagnose-gallery .caption-label { left: 0; right: 0; bottom: 0; max-width: 100%; opacity: 0.9;
    white-space: normal; font-size: 0.75em; text-align: center; border-radius: 0; }
.error-box { border: 1px solid #dc2626; background: #fef2f2; border-radius: 6px; padding: 6px 10px; }
.error-box .md, .error-box p { color: #991b1b; margin: 0; }
/* Gradio puts the class on the block and again on the text inside: one box, not two */
.error-box .error-box { border: 0; background: none; padding: 0; }
.dark .error-box { background: #3b1111; border-color: #f87171; }
.dark .error-box .md, .dark .error-box p { color: #fecaca; }
#notice { background: #fff4e5; border: 1px solid #f0b35b; padding: 8px 14px; }
#notice .md, #notice p { color: #5c3b00; margin: 0; }
.dark #notice { background: #3d2c10; border-color: #8a6420; }
.dark #notice .md, .dark #notice p { color: #ffe2b0; }
.block.small { opacity: 0.85; }
.block.small .md, .block.small .md p { font-size: var(--text-sm); }
#diagnose-table .dx-table { width: 100%; border-collapse: collapse; font-size: 0.9em; margin: 0;
                           border: 0 !important; }
#diagnose-table .dx-table tr { border: 0 !important; }
#diagnose-table .dx-table th, #diagnose-table .dx-table td {
    border: 0 !important; border-bottom: 1px solid var(--border-color-primary) !important;
    padding: 3px 6px; background: none; }
#diagnose-table .dx-table th { text-align: left; font-weight: 600; }
#diagnose-table .dx-table .num { text-align: right; font-variant-numeric: tabular-nums;
                                 white-space: nowrap; }
#diagnose-table .dx-table td.name { white-space: nowrap; }
#diagnose-table .dx-table td.bar { width: 40%; min-width: 80px; }
#diagnose-table .track { position: relative; height: 10px; background: var(--neutral-200);
                         border-radius: 5px; }
.dark #diagnose-table .track { background: var(--neutral-700); }
#diagnose-table .fill { height: 100%; background: var(--neutral-400); border-radius: 5px; }
#diagnose-table .thr { position: absolute; top: -3px; width: 2px; height: 16px;
                       background: var(--body-text-color); }
#diagnose-table tr.hit td { font-weight: 700; color: #c2410c; }
.dark #diagnose-table tr.hit td { color: #fb923c; }
#diagnose-table tr.hit .fill { background: #ea580c; }
#diagnose-table .dx-legend { font-size: 0.8em; opacity: 0.75; margin: 6px 0 0 0; }
#diagnose-table .dx-scroll { overflow-x: auto; }
/* the file box's label wraps instead of running under its clear (x) button */
#screen-file > label[data-testid=block-label], #diagnose-file > label[data-testid=block-label] {
    max-width: calc(100% - 48px); white-space: normal; }
/* phones: a narrower table (the threshold column stays on screen), tighter page margins */
@media (max-width: 640px) {
    #diagnose-table .dx-table { padding: 0; font-size: 0.85em; }
    #diagnose-table .dx-table td.bar { min-width: 30px; width: 20%; }
    #diagnose-table .dx-table td.name { white-space: normal; }
    #diagnose-table .dx-table th, #diagnose-table .dx-table td { padding: 3px 3px; }
}
"""

# the label picker before a result: every label, in the model's order
D_PICK_CHOICES = [(_pretty(label), label) for label in get_spec("diagnosis").labels]

THEME = gr.themes.Soft(primary_hue="blue", font=["ui-sans-serif", "system-ui", "sans-serif"],
                       font_mono=["ui-monospace", "monospace"])  # no web-font download

with gr.Blocks(title="DiaChestXR: chest X-ray screening and diagnosis",
               delete_cache=(3600, 3600)) as demo:
    gr.Markdown("# DiaChestXR · chest X-ray screening and diagnosis with Grad-CAM")
    gr.Markdown(f"**⚠️ {DISCLAIMER}** The models were trained on small public datasets; their "
                "output is not a diagnosis and must not guide patient care. Upload a frontal "
                "chest radiograph (PNG, JPEG or DICOM) or click a sample image.",
                elem_id="notice")

    # ---------------------------------------------------------------- screening tab
    # short labels: both tabs fit a phone's width (longer ones went behind a "⋯" menu)
    with gr.Tabs(overflow_behavior="wrap"):
        with gr.Tab("Screening", id="screening"):
            gr.Markdown(f"{TAB_TITLES['screening']}  \n{_model_markdown('screening')}",
                        elem_classes=["small"])
            s_state = gr.State(time_to_live=STATE_TTL_S)
            with gr.Row():
                with gr.Column(scale=4, min_width=280):
                    s_file, s_run, s_error, s_examples = _upload("screening", "Screen this X-ray",
                                                                 "screen")
                with gr.Column(scale=5, min_width=320, elem_id="screen-result"):
                    # the API's overlay (the predicted class's heatmap); the page shows the
                    # radiograph beside the heatmap instead, in the slider below
                    s_overlay = gr.Image(label="Grad-CAM heatmap", type="numpy", format="png",
                                         interactive=False, visible=False, elem_id="screen-overlay")
                    # download: the heatmap (the slider's second image)
                    s_compare = gr.ImageSlider(label=COMPARE_LABEL, type="filepath",
                                               format="png", interactive=False, max_height=420,
                                               buttons=["download", "fullscreen"],
                                               elem_id="screen-compare", elem_classes=["compare"])
                    s_caption = gr.Markdown(elem_classes=["small"], elem_id="screen-caption")
                    gr.HTML(COLOUR_BAR)
                with gr.Column(scale=4, min_width=280):
                    s_label = gr.Label(label="Prediction", num_top_classes=3,
                                       elem_id="screen-label")
                    s_class = gr.Radio(choices=list(get_spec("screening").labels),
                                       label="Show the heatmap for", interactive=False,
                                       elem_id="screen-class")
                    s_alpha = gr.Slider(0.0, 1.0, value=DEFAULT_ALPHA, step=0.05,
                                        label="Heatmap opacity", elem_id="screen-alpha")
                    s_method = _method_choice("screen")
                    s_download = gr.DownloadButton("Download result (JSON)", interactive=False,
                                                   elem_id="screen-download")
                    with gr.Accordion("Result as JSON (what the /screen API returns)", open=False):
                        s_json = gr.JSON(label="result", show_label=False)
            with gr.Accordion("About the screening model", open=False):
                gr.Markdown(_model_card("screening"))

            # new input: clear the old result first (so an error never sits beside a stale one),
            # then the API step, then the UI-only views
            s_results = [s_label, s_overlay, s_compare, s_caption, s_json, s_download, s_class,
                         s_state, s_error]
            s_clear = dict(fn=_screen_clear, outputs=s_results, queue=False,
                           api_visibility="private")
            s_step = dict(fn=screen, inputs=[s_file, s_alpha, s_method],
                          outputs=[s_json, s_overlay, s_download, s_state])
            s_view = dict(fn=_screen_view, inputs=[s_state, s_alpha], api_visibility="private",
                          outputs=[s_label, s_class, s_caption, s_download, s_compare, s_state])
            s_scroll = dict(fn=None, js=_scroll_js("screen-result"))
            s_scroll_error = dict(fn=None, js=_scroll_js("screen-error", whole=True))
            # queued: it re-reads the upload, so it counts against the concurrency limit too
            s_failed = dict(fn=_failure("screening"), inputs=[s_file], outputs=[s_error],
                            api_visibility="private")
            step = gr.on([s_run.click, s_file.upload], **s_clear).then(**s_step, api_name="screen")
            step.success(**s_view).then(**s_scroll)
            step.failure(**s_failed).then(**s_scroll_error)
            if s_examples is not None:
                step = s_examples.load_input_event.then(**s_clear).then(
                    **s_step, api_visibility="private")
                step.success(**s_view).then(**s_scroll)
                step.failure(**s_failed).then(**s_scroll_error)
            s_file.clear(**s_clear)
            s_method.input(_screen_again, inputs=[s_file, s_alpha, s_method, s_state],
                           outputs=[s_json, s_overlay, s_download, s_state],
                           api_visibility="private").success(**s_view)
            s_class.input(_screen_explain, inputs=[s_class, s_alpha, s_state],
                          outputs=[s_compare, s_caption, s_state], api_visibility="private")
            s_alpha.release(_screen_explain, inputs=[s_class, s_alpha, s_state],
                            outputs=[s_compare, s_caption, s_state], api_visibility="private")

        # ---------------------------------------------------------------- diagnosis tab
        with gr.Tab("Diagnosis", id="diagnosis"):
            gr.Markdown(f"{TAB_TITLES['diagnosis']}  \n{_model_markdown('diagnosis')}",
                        elem_classes=["small"])
            d_state = gr.State(time_to_live=STATE_TTL_S)
            with gr.Row():
                with gr.Column(scale=4, min_width=280):
                    d_file, d_run, d_error, d_examples = _upload("diagnosis", "Diagnose this X-ray",
                                                                 "diagnose")
                    with gr.Accordion("Decision thresholds", open=False):
                        d_calibrated = gr.Checkbox(value=True, elem_id="diagnose-calibrated",
                                                   label="Use the calibrated per-label thresholds")
                        d_threshold = gr.Slider(0.01, 0.99, value=0.5, step=0.01, interactive=False,
                                                label="One threshold for every label",
                                                elem_id="diagnose-threshold")
                    d_alpha = gr.Slider(0.0, 1.0, value=DEFAULT_ALPHA, step=0.05,
                                        label="Heatmap opacity", elem_id="diagnose-alpha")
                    d_method = _method_choice("diagnose")
                with gr.Column(scale=5, min_width=320, elem_id="diagnose-result"):
                    d_summary = gr.Markdown(NO_RESULT, elem_id="diagnose-summary")
                    d_table = gr.HTML(elem_id="diagnose-table")
                    d_download = gr.DownloadButton("Download result (JSON)", interactive=False,
                                                   elem_id="diagnose-download")
                    with gr.Accordion("Result as JSON (what the /diagnose API returns)",
                                      open=False):
                        d_json = gr.JSON(label="result", show_label=False)
                with gr.Column(scale=5, min_width=320):
                    # the radiograph beside one label's heatmap (the most probable first)
                    d_pick = gr.Dropdown(choices=D_PICK_CHOICES, value=None,
                                         label="Show the heatmap for (any label)",
                                         elem_id="diagnose-pick")
                    d_pick_image = gr.ImageSlider(label=COMPARE_LABEL, type="filepath",
                                                  format="png", interactive=False,
                                                  max_height=400,
                                                  buttons=["download", "fullscreen"],
                                                  elem_id="diagnose-compare",
                                                  elem_classes=["compare"])
                    gr.Markdown("Left of the handle: the radiograph; right: the heatmap (drag the "
                                "handle to compare).", elem_classes=["small"])
                    gr.HTML(COLOUR_BAR)
                    # the API's overlays: the most probable labels; a click shows one above
                    gr.Markdown("**Heatmaps of the most probable labels** (▲ = finding): click "
                                "one to see it beside the radiograph", elem_classes=["small"])
                    d_gallery = gr.Gallery(label="Heatmaps of the most probable labels",
                                           show_label=False, format="png", columns=3, height="auto",
                                           object_fit="contain", allow_preview=False,
                                           buttons=[], interactive=False,
                                           elem_id="diagnose-gallery")
            with gr.Accordion("About the diagnosis model", open=False):
                gr.Markdown(_model_card("diagnosis"))

            d_outputs = [d_json, d_gallery, d_download, d_state]
            d_results = [d_summary, d_table, d_json, d_gallery, d_download, d_pick_image, d_pick,
                         d_state, d_error]
            d_clear = dict(fn=_diagnosis_clear, outputs=d_results, queue=False,
                           api_visibility="private")
            d_step = dict(fn=diagnose, outputs=d_outputs,
                          inputs=[d_file, d_calibrated, d_threshold, d_alpha, d_method])
            d_after = [dict(fn=_diagnosis_view, inputs=[d_state], api_visibility="private",
                            outputs=[d_summary, d_table, d_download, d_gallery]),
                       dict(fn=_diagnosis_pick, inputs=[d_pick, d_alpha, d_state],
                            outputs=[d_pick, d_pick_image, d_state], api_visibility="private")]
            d_failed = dict(fn=_failure("diagnosis"), inputs=[d_file], outputs=[d_error],
                            api_visibility="private")
            d_scroll = dict(fn=None, js=_scroll_js("diagnose-result"))
            d_scroll_error = dict(fn=None, js=_scroll_js("diagnose-error", whole=True))
            step = gr.on([d_run.click, d_file.upload], **d_clear).then(**d_step,
                                                                        api_name="diagnose")
            step.success(**d_after[0]).success(**d_after[1]).then(**d_scroll)
            step.failure(**d_failed).then(**d_scroll_error)
            if d_examples is not None:
                step = d_examples.load_input_event.then(**d_clear).then(
                    **d_step, api_visibility="private")
                step.success(**d_after[0]).success(**d_after[1]).then(**d_scroll)
                step.failure(**d_failed).then(**d_scroll_error)
            d_file.clear(**d_clear)
            d_calibrated.input(lambda calibrated: gr.Slider(interactive=not calibrated),
                               inputs=[d_calibrated], outputs=[d_threshold],
                               api_visibility="private")
            gr.on([d_calibrated.input, d_threshold.release], _rethreshold,
                  inputs=[d_calibrated, d_threshold, d_alpha, d_state], outputs=d_outputs,
                  api_visibility="private").success(**d_after[0]).success(**d_after[1])
            d_method.input(_diagnose_again, inputs=[d_file, d_calibrated, d_threshold, d_alpha,
                                                    d_method, d_state],
                           outputs=d_outputs, api_visibility="private").success(
                **d_after[0]).success(**d_after[1])
            d_pick.input(_diagnosis_pick, inputs=[d_pick, d_alpha, d_state],
                         outputs=[d_pick, d_pick_image, d_state], api_visibility="private")
            d_alpha.release(_diagnosis_opacity, inputs=[d_pick, d_alpha, d_state],
                            outputs=[d_gallery, d_pick_image, d_state], api_visibility="private")
            d_gallery.select(_diagnosis_select, inputs=[d_alpha, d_state],
                             outputs=[d_pick, d_pick_image, d_state], api_visibility="private")

    gr.Markdown(f"DiaChestXR {__version__} · {DISCLAIMER} · Use the API: `/screen` and "
                "`/diagnose` (link at the bottom of the page).", elem_classes=["small"])

demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)


def main() -> None:
    example_dirs = sorted({str(e.path.parent) for e in EXAMPLES})
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                max_file_size=MAX_FILE_BYTES, allowed_paths=example_dirs,
                theme=THEME, css=CSS, footer_links=["api", "gradio"])


if __name__ == "__main__":
    main()
