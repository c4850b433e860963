"""What the page says: pure functions from a result (the API's dict) and model information
to Markdown or HTML. No Gradio here, no model, no file: tests call them directly."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from ..inference import against_threshold
from ..registry import ARCH_NAMES, DISCLAIMER, METHOD_NAMES

NOTICE = (f"**⚠️ {DISCLAIMER}** The models were trained on small public datasets; their "
          "output is not a diagnosis and must not guide patient care. Upload a frontal "
          "chest radiograph (PNG, JPEG or DICOM) or click a sample image.")
SOURCE_NAMES = {"local": "a local folder", "hub": "the Hugging Face Hub",
                "bundled": "the checkpoint bundled with the app"}
WEAK_AUROC = 0.7  # below this test AUROC the tab warns that its outputs are mostly wrong
NO_RESULT = "Upload an image (or click a sample) to see the 14 probabilities."
TAB_TITLES = {"screening": "**COVID-19, Pneumonia or Normal** from one frontal chest radiograph.",
              "diagnosis": "**The 14 NIH ChestX-ray14 findings** (several may apply) from one "
                           "frontal chest radiograph."}
COMPARE_HINT = ("Drag the handle from the left edge to uncover the radiograph under the "
                "heatmap. Warm colours mark the regions that raised this class's score.")
COMPARE_LABEL = "Radiograph | heatmap"
# What the heatmap colours mean (pytorch-grad-cam draws with OpenCV's JET colour map).
COLOUR_BAR = ("<div class='cbar'><span>low</span><div class='cbar-ramp'></div><span>high</span></div>"
              "<div class='cbar-note'>how much a region raised the score of the class shown; "
              "no colour: an empty map. Grad-CAM is coarse (a 7x7 or 13x13 grid, enlarged): it "
              "shows what the model used, not where a disease is, and often lights up film "
              "edges, shoulders or text.</div>")
UPLOAD_FIRST = "Upload a chest X-ray first (PNG, JPEG or DICOM)."
ANALYSING = "⏳ **Analysing the radiograph…**"
# a new input closes the pop-ups of the previous one (its reason stays in the error box)
CLOSE_TOASTS = "() => { document.querySelectorAll('.toast-close').forEach(b => b.click()); return []; }"
INTERNAL_ERROR = ("The analysis failed because of an internal error (logged on the server). "
                  "Try another image.")


@dataclass(frozen=True)
class ModelInfo:
    """What the page says about one loaded model (built from `Predictor.info`)."""

    arch: str
    source: str  # "local" | "hub" | "bundled"
    location: str  # public: never a server path
    # how far to trust an answer, in words: the stranger's-film figures first, the pooled
    # test figure last (diachestxr.card.outlook)
    outlook: Sequence[str] = ()
    stranger_auroc: float | None = None  # diachestxr.card.stranger_auroc: the weak notice's figure
    specificity: float | None = None  # diagnosis: the operating point's validation specificity
    prevalence: Mapping[str, float] = field(default_factory=dict)  # diagnosis: label -> training share


def pretty(label: str) -> str:
    return label.replace("_", " ")


def unavailable(task: str, error: str) -> str:
    return f"The {task} model is not available on this server: {error}"


# ------------------------------------------------------------------------ the models
def model_markdown(task: str, info: ModelInfo | None, error: str | None = None) -> str:
    """The tab's line on its model: architecture, where the weights came from, how far to
    trust it (the figure that predicts a stranger's film first), and the weak-model notice."""
    if info is None:
        return f"⚠️ **The {task} model is not loaded.** {error or ''}".rstrip()
    where = "" if info.source == "bundled" else f" (`{info.location}`)"
    text = (f"Model: **{ARCH_NAMES.get(info.arch, info.arch)}** · weights from "
            f"{SOURCE_NAMES.get(info.source, info.source)}{where}")
    if info.outlook:
        text += ("  \n<span class='dx-outlook'><b>How far to trust it:</b> "
                 + html.escape(" ".join(info.outlook)) + "</span>")
    return text + _weak_banner(info.stranger_auroc)


def trust_note(info: ModelInfo | None) -> str:
    """Beside every answer (a phone user never sees the header): what the answer is, and the
    one figure that predicts how it does on a stranger's film."""
    first = f" {info.outlook[0]}" if info and info.outlook else ""
    return f"<span class='dx-legend'>Model output for research, not a diagnosis.{first}</span>"


def _weak_banner(auroc: float | None) -> str:
    if auroc is None or auroc >= WEAK_AUROC:
        return ""
    return (f"  \n⚠️ **Weak model:** on films like a stranger's its AUROC is {auroc:.2f}, "
            "close to chance (0.5); its findings are mostly wrong. Use this tab to explore "
            "the pipeline, not the image.")


def tab_heading(task: str, info: ModelInfo | None, error: str | None = None) -> str:
    return f"{TAB_TITLES[task]}  \n{model_markdown(task, info, error)}"


# ----------------------------------------------------------------------- both tasks
def warning_lines(result: Mapping) -> str:
    """The result's own warnings (e.g. a low-resolution upload), where a reader cannot miss them."""
    return "".join(f"  \n<span class='dx-warning'>⚠️ {html.escape(w)}</span>"
                   for w in result.get("warnings") or ())


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


def screening_caption(result: Mapping, trust: str = "") -> str:
    """The caption under the slider after a run: the predicted class's map, the result's
    warnings, and `trust` (trust_note: what the answer is worth)."""
    label = result["label"]
    return (f"Heatmap for **{label}**, the predicted class "
            f"({result['confidences'][label]:.0%}{called_note(result)}). "
            + COMPARE_HINT + warning_lines(result) + (f"  \n{trust}" if trust else "")
            + check_line(result))


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
    """What a finding means with the thresholds in use, and how the labels are ordered, in
    words (`specificity`: the validation specificity the checkpoint's own thresholds keep)."""
    if len(set(thresholds.values())) == 1:
        return (f"A finding is a probability of at least {next(iter(thresholds.values())):.2f} "
                "(one threshold for every label); labels are listed most probable first.")
    keeps = (f", set so that {specificity:.0%} of validation radiographs without the label "
             "stay below it" if specificity else "")
    return ("A finding is a probability at or above its own label's threshold" + keeps + ". "
            "Labels are listed by how far they sit above or below that threshold: the "
            "labels' scales differ, so a rare label at 5 % can mean more than a common one "
            "at 50 %.")


def usual_rate(result: Mapping, label: str, prevalence: Mapping[str, float]) -> str:
    """e.g. "3.1x its usual rate": the probability against the share of training radiographs
    with the label (its calibrated probabilities make the two comparable); "" when the
    checkpoint does not record that share."""
    base = prevalence.get(label)
    return f"{result['probabilities'][label] / base:.1f}x its usual rate" if base else ""


def _in_words(result: Mapping, label: str, prevalence: Mapping[str, float]) -> str:
    rate = usual_rate(result, label, prevalence)
    p, t = against_threshold(result, label)
    return f"**{pretty(label)}** {p} ({rate + ', ' if rate else ''}threshold {t})"


def diagnosis_summary(result: Mapping, specificity: float | None = None,
                      prevalence: Mapping[str, float] | None = None, trust: str = "") -> str:
    """The lines above the table: the findings (or the labels closest to their threshold),
    each against its threshold and its usual rate, what a finding means, the result's
    warnings, `trust` (trust_note) and the radiograph check's score."""
    findings, prevalence = result["findings"], prevalence or {}
    if findings:
        plural = "s" if len(findings) > 1 else ""
        text = (f"**{len(findings)} finding{plural}:** "
                + "; ".join(_in_words(result, l, prevalence) for l in findings))
    else:
        text = ("**No finding above its threshold.** Closest: "
                + "; ".join(_in_words(result, l, prevalence) for l in list(result["probabilities"])[:2]))
    point = operating_point(result["thresholds"], specificity)
    return (text + warning_lines(result) + f"  \n<span class='dx-legend'>{point}</span>"
            + (f"  \n{trust}" if trust else "") + check_line(result))


def diagnosis_table(result: Mapping, prevalence: Mapping[str, float] | None = None) -> str:
    """All the probabilities (in the result's order: furthest above their threshold first)
    as bars, each with its threshold's tick and its usual rate; findings in bold."""
    thr, findings, prevalence = result["thresholds"], result["findings"], prevalence or {}
    rows = []
    for label, p in result["probabilities"].items():
        hit = label in findings
        rate = usual_rate(result, label, prevalence).replace("x its usual rate", "× usual")
        shown_p, shown_t = against_threshold(result, label, digits=1)
        rows.append(
            f"<tr class='{'hit' if hit else ''}'>"
            f"<td class='name'>{'▲ ' if hit else ''}{html.escape(pretty(label))}"
            + (f"<span class='rate'>{rate}</span>" if rate else "") + "</td>"
            f"<td class='bar'><div class='track'>"
            f"<div class='fill' style='width:{p * 100:.1f}%'></div>"
            f"<div class='thr' style='left:{thr[label] * 100:.1f}%'></div></div></td>"
            f"<td class='num'>{shown_p}</td><td class='num thrnum'>{shown_t}</td></tr>")
    return ("<div class='dx-scroll'><table class='dx-table'><thead><tr><th>Label</th>"
            "<th>Probability</th><th></th><th class='num'>Threshold</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
            "<p class='dx-legend'>▲ bold: a finding (probability at or above its own "
            "threshold, the black tick on its bar)."
            + (" Under each label, e.g. 3.0× usual: its probability against the share of "
               "training radiographs with it." if prevalence else "") + "</p>")


def label_choices(labels: Iterable[str]) -> list[tuple[str, str]]:
    """The label picker before a result: every label, in the model's order."""
    return [(pretty(label), label) for label in labels]


def pick_choices(result: Mapping, empty: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The label picker after a result: every label with its caption, in the result's order
    (`empty`: the labels whose map is empty)."""
    empty = set(empty)
    return [(short_caption(result, name, name in empty), name) for name in result["probabilities"]]
