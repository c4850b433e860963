"""What the page says: pure functions from a result (the API's dict) and model information
to Markdown or HTML. No Gradio here, no model, no file: tests call them directly."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

DISCLAIMER = "Research demo — not for clinical use."
NOTICE = (f"**⚠️ {DISCLAIMER}** The models were trained on small public datasets; their "
          "output is not a diagnosis and must not guide patient care. Upload a frontal "
          "chest radiograph (PNG, JPEG or DICOM) or click a sample image.")
ARCH_NAMES = {"alexnet": "AlexNet", "densenet121": "DenseNet-121"}
SOURCE_NAMES = {"local": "a local folder", "hub": "the Hugging Face Hub",
                "bundled": "the checkpoint bundled with the app"}
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
# What the heatmap colours mean (pytorch-grad-cam draws with OpenCV's JET colour map).
COLOUR_BAR = ("<div class='cbar'><span>low</span><div class='cbar-ramp'></div><span>high</span></div>"
              "<div class='cbar-note'>how much a region raised the score of the class shown; "
              "no colour: an empty map</div>")
UPLOAD_FIRST = "Upload a chest X-ray first (PNG, JPEG or DICOM)."
INTERNAL_ERROR = ("The analysis failed because of an internal error (logged on the server). "
                  "Try another image.")


@dataclass(frozen=True)
class ModelInfo:
    """What the page says about one loaded model (built from `Predictor`'s accessors)."""

    arch: str
    source: str  # "local" | "hub" | "bundled"
    location: str  # public: never a server path
    headline: Mapping[str, object] = field(default_factory=dict)  # the card's lead numbers
    test_auroc: float | None = None  # inference.headline_auroc of the test metrics
    adult: Mapping | None = None  # screening's adults-only test metrics, where measured
    held_out: Mapping[str, float] = field(default_factory=dict)  # screening: source -> AUROC
    specificity: float | None = None  # diagnosis: the operating point's validation specificity


def pretty(label: str) -> str:
    return label.replace("_", " ")


def unavailable(task: str, error: str) -> str:
    return f"The {task} model is not available on this server: {error}"


# ------------------------------------------------------------------------ the models
def model_markdown(task: str, info: ModelInfo | None, error: str | None = None) -> str:
    """The tab's line on its model: architecture, where the weights came from, the test
    figures, and the warnings a reader of those figures needs."""
    if info is None:
        return f"⚠️ **The {task} model is not loaded.** {error or ''}".rstrip()
    where = "" if info.source == "bundled" else f" (`{info.location}`)"
    text = (f"Model: **{ARCH_NAMES.get(info.arch, info.arch)}** · weights from "
            f"{SOURCE_NAMES.get(info.source, info.source)}{where}")
    text += _held_out_line(info.held_out)  # first: what predicts a stranger's film
    headline = " · ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in info.headline.items() if v is not None)
    if headline:
        text += f"  \nOn its test split: {headline} (research data; see *About the model*)"
    return text + _adult_banner(info.adult) + _weak_banner(info.test_auroc)


def _held_out_line(held_out: Mapping[str, float]) -> str:
    if not held_out:
        return ""
    low, high = min(held_out.values()), max(held_out.values())
    return (f"  \nOn hospitals its training never saw ({len(held_out)} sources, each left out "
            f"in turn): COVID-19 told from other adults' radiographs with an AUROC of "
            f"**{low:.2f}-{high:.2f}**, and the share of COVID-19 found at the operating point "
            f"is lower than on the test split (see *About the model*).")


def _adult_banner(adult: Mapping | None) -> str:
    if not adult:
        return ""
    return (f"  \n⚠️ The screening data confounds disease with age (every COVID-19 image is "
            f"an adult, nearly every other a child), which flatters these scores. On adults "
            f"only: COVID-19 against other adults' radiographs AUROC "
            f"**{adult['covid19_vs_non_covid19_auroc']:.2f}**; adult Normal called Normal "
            f"**{adult['normal']['called_normal']:.0%}**; adult Pneumonia called Normal "
            f"{adult['pneumonia']['called_normal']:.0%}.")


def _weak_banner(auroc: float | None) -> str:
    if auroc is None or auroc >= WEAK_AUROC:
        return ""
    return (f"  \n⚠️ **Weak model:** a test AUROC of {auroc:.2f} is close to chance (0.5); "
            "its findings are mostly wrong — use this tab to explore the pipeline, not the "
            "image.")


def tab_heading(task: str, info: ModelInfo | None, error: str | None = None) -> str:
    return f"{TAB_TITLES[task]}  \n{model_markdown(task, info, error)}"


# ----------------------------------------------------------------------- both tasks
def check_line(result: Mapping) -> str:
    """The radiograph check's score, so a user can see how sure the gate was."""
    check = result.get("radiograph_check")
    if not check:
        return ""
    return (f"  \n<span class='dx-legend'>Radiograph check: passed, score {check['score']:.2f} "
            f"(a frontal chest radiograph needs {check['threshold']:.2f} or more).</span>")


def failure_markdown(text: str) -> str:
    """The reason a file was not analysed, kept beside the upload (the toast fades)."""
    return f"**Cannot analyse this file.** {html.escape(text)}"


def method_choices(methods: Iterable[str]) -> list[tuple[str, str]]:
    return [(METHOD_NAMES.get(m, m), m) for m in methods]


def scroll_js(elem_id: str, whole: bool = False) -> str:
    """In the browser: bring a result to the top of the window if it starts below its
    middle (on a phone the columns stack and the result lands below the sample images; on a
    wide screen it is already beside the upload and nothing moves); whole=True: bring a
    short element (an error) fully into view if any of it is outside."""
    test = ("r.top < 0 || r.bottom > window.innerHeight" if whole else
            "r.top < 0 || r.top > window.innerHeight / 2")
    block = "nearest" if whole else "start"
    return (f"() => {{ const el = document.getElementById('{elem_id}'); if (!el) return;"
            f" const r = el.getBoundingClientRect(); if ({test})"
            f" el.scrollIntoView({{behavior: 'smooth', block: '{block}'}}); }}")


def source_page(url: str) -> str:
    """A browsable page for a raw file URL (GitHub raw files: the repository)."""
    parts = url.split("/")
    if len(parts) > 4 and parts[2] == "raw.githubusercontent.com":
        return f"https://github.com/{parts[3]}/{parts[4]}"
    return url


def examples_credits(items: Sequence) -> str:
    """Under the sample images: each one's dataset label, and the sources with licences
    (`items`: diachestxr.examples.Example, in display order)."""
    credits = "; ".join(f"{i}. {html.escape(pretty(e.label))}" for i, e in enumerate(items, 1))
    sources: dict[tuple[str, str], list] = {}
    for e in items:
        sources.setdefault((e.source, e.license), []).append(e)
    source_text = "; ".join(f"[{html.escape(src)}]({source_page(group[0].url)}) ({lic})"
                            for (src, lic), group in sources.items())
    return f"Dataset labels, left to right: {credits}. Sources: {source_text}."


# ------------------------------------------------------------------------ screening
def called_note(result: Mapping) -> str:
    """Why the label is not the most confident class, when the operating point made it so."""
    top = max(result["confidences"], key=result["confidences"].get)
    if result["label"] == top:
        return ""
    return (f"; called COVID-19 from its operating point, although {top} is more probable"
            if result["label"] == "COVID-19" else
            "; below the COVID-19 operating point, so the more probable of the others")


def screening_caption(result: Mapping) -> str:
    """The caption under the slider after a run: the predicted class's map."""
    label = result["label"]
    return (f"Heatmap for **{label}**, the predicted class "
            f"({result['confidences'][label]:.0%}{called_note(result)}). "
            + COMPARE_HINT + check_line(result))


def class_caption(result: Mapping, label: str) -> str:
    """The caption when the user picks a class's map."""
    predicted = result["label"]
    return (f"Heatmap for **{label}** ({result['confidences'][label]:.0%})"
            + (", the predicted class. " if label == predicted else
               f". The predicted class is **{predicted}**. ")
            + COMPARE_HINT)


def label_value(result: Mapping) -> dict:
    """gr.Label's value with the called class as its headline: with a COVID-19 operating
    point the label need not be the most confident class, and a plain {class: p} dict would
    headline the arg-max."""
    confidences = sorted(result["confidences"].items(), key=lambda kv: -kv[1])
    return {"label": result["label"],
            "confidences": [{"label": c, "confidence": p} for c, p in confidences]}


# ------------------------------------------------------------------------ diagnosis
def short_caption(result: Mapping, label: str, empty: bool = False) -> str:
    """e.g. "▲ Effusion 71%" (▲: a finding, at or above its threshold). Short: the gallery
    clips long captions on both sides."""
    mark = "▲ " if label in result["findings"] else ""
    note = " · empty map" if empty else ""
    return f"{mark}{pretty(label)} {result['probabilities'][label]:.0%}{note}"


def operating_point(thresholds: Mapping[str, float], specificity: float | None) -> str:
    """What a finding means with the thresholds in use, in words (`specificity`: the
    validation specificity the checkpoint's own thresholds keep, if it says)."""
    if len(set(thresholds.values())) == 1:
        return (f"A finding is a probability of at least {next(iter(thresholds.values())):.2f} "
                "(one threshold for every label).")
    if specificity:
        return (f"A finding scores higher than {specificity:.0%} of the validation radiographs "
                "without it (its threshold); the probabilities below rank suspicions, they "
                "are not diagnoses.")
    return "A finding is a probability at or above its label's threshold."


def diagnosis_summary(result: Mapping, specificity: float | None = None) -> str:
    """The line above the table: the findings (or the most probable labels), what a finding
    means here, and the radiograph check's score."""
    probs, findings = result["probabilities"], result["findings"]
    if findings:
        plural = "s" if len(findings) > 1 else ""
        text = (f"**{len(findings)} finding{plural} at the operating point:** "
                + ", ".join(f"{pretty(l)} ({probs[l]:.0%})" for l in findings))
    else:
        text = ("**No finding at the operating point.** Most probable: "
                + ", ".join(f"{pretty(l)} ({probs[l]:.0%})" for l in list(probs)[:3]))
    point = operating_point(result["thresholds"], specificity)
    return text + f"  \n<span class='dx-legend'>{point}</span>" + check_line(result)


def diagnosis_table(result: Mapping) -> str:
    """All the probabilities (in the result's order, most probable first) as bars, each
    with its threshold's tick; findings in bold."""
    thr, findings = result["thresholds"], result["findings"]
    rows = []
    for label, p in result["probabilities"].items():
        hit = label in findings
        rows.append(
            f"<tr class='{'hit' if hit else ''}'>"
            f"<td class='name'>{'▲ ' if hit else ''}{html.escape(pretty(label))}</td>"
            f"<td class='bar'><div class='track'>"
            f"<div class='fill' style='width:{p * 100:.1f}%'></div>"
            f"<div class='thr' style='left:{thr[label] * 100:.1f}%'></div></div></td>"
            f"<td class='num'>{p:.1%}</td><td class='num thrnum'>{thr[label]:.2f}</td></tr>")
    return ("<div class='dx-scroll'><table class='dx-table'><thead><tr><th>Label</th>"
            "<th>Probability</th><th></th><th class='num'>Threshold</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div>"
            "<p class='dx-legend'>▲ bold, orange: a finding (probability at or above its "
            "threshold). The black tick on each bar marks the threshold.</p>")


def label_choices(labels: Iterable[str]) -> list[tuple[str, str]]:
    """The label picker before a result: every label, in the model's order."""
    return [(pretty(label), label) for label in labels]


def pick_choices(result: Mapping, empty: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The label picker after a result: every label with its caption, most probable first
    (`empty`: the labels whose map is empty)."""
    empty = set(empty)
    return [(short_caption(result, name, name in empty), name) for name in result["probabilities"]]
