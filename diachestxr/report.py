"""A PDF report of one analysed radiograph, to take away: the radiograph, its heatmap(s), the
probabilities with their thresholds, which model said so, how far to trust it, and the
disclaimer. Built from what a caller already holds (the API's result dict, the image, the
maps, `Predictor.info(task)`), so the CLI and the web app write the same report without
running a model again.

    from diachestxr.report import write_report
    r = predictor.diagnose("xray.png")
    write_report("xray.pdf", r.to_dict(), r.image, {l: e.cam for l, e in r.explanations.items()},
                 predictor.info("diagnosis"))

matplotlib draws it: bare Figures saved through its PDF backend (no pyplot, so no GUI
backend and no global figure state), A4, with TrueType text (fonttype 42) that text tools
such as pdftotext extract.
"""

from __future__ import annotations

import os
import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import numpy as np

from . import __version__
from .explain import DEFAULT_ALPHA, overlay
from .inference import TOP_FINDINGS, against_threshold, ranked
from .io import printable, shrink
from .registry import ARCH_NAMES, DEFAULT_MAP_METHOD, DISCLAIMER, METHOD_NAMES

PAGE_W, PAGE_H = 8.27, 11.69  # A4, inches
MARGIN = 0.6  # inches, every side; the footer sits inside the bottom one
TEXT_W = PAGE_W - 2 * MARGIN
IMAGE_DPI = 200  # images are embedded at this resolution of their printed size, no more
LEADING = 1.4  # line height / font size
MAPS_NOTE = ("{method} is coarse: it is computed on the network's last convolutional grid (a "
             "few cells a side) and stretched over the image. Warm colours mark the regions that "
             "raised the score of the label shown, whatever they are (lungs, but also markers, "
             "text or borders). It is not localisation: it does not outline a finding, and a "
             "warm region is not where a disease is. An empty map means no region raised that "
             "score, not that there is nothing to see.")

# matplotlib's settings are global and its text layout is not thread-safe: one report at a
# time per process (the web app may be asked for two at once); a report takes well under 1 s.
_LOCK = threading.Lock()
# Embedding (subsetting) each font is most of a report's time: three fonts (DejaVu Sans,
# its bold, DejaVu Sans Mono), each embedded once. matplotlib 3.11 starts a second copy of a
# font for characters past the first "subset" (sized by ps.fonttype, even in a PDF: 256 for
# Type 3, so "—" and "•" would need one) and for ligature glyphs ("fi"; see _Document).
_RC = {"pdf.fonttype": 42,  # TrueType: real, extractable text (Type 3 glyphs often are not)
       "ps.fonttype": 42,
       "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"],
       "font.monospace": ["DejaVu Sans Mono"]}


def write_report(path: str | os.PathLike, result: Mapping, image: np.ndarray,
                 cams: Mapping[str, np.ndarray], model: Mapping, *, name: str | None = None,
                 alpha: float = DEFAULT_ALPHA) -> Path:
    """Write a one- or two-page A4 PDF report of one result; returns its path.

    result: `Result.to_dict()` (extra keys such as "method" are read, "file" is never
    printed). image: the (H, W) uint8 radiograph. cams: {label: map in [0, 1]} at any size
    (uint8 maps are read as value/255); screening draws the called class's map, diagnosis
    those of the top-ranked labels (up to 3, ranked as the app and the CLI rank them:
    `inference.ranked`). model: `Predictor.info(task)`.
    name: the image's name to print (None: no name appears anywhere in the report).
    """
    task = result.get("task")
    if task not in ("screening", "diagnosis"):
        raise ValueError(f"result must be a screening or diagnosis result (its 'task'), "
                         f"got {task!r}")
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"image must be the (H, W) uint8 grayscale radiograph, got shape "
                         f"{image.shape} and dtype {image.dtype}")
    scores = result["confidences"] if task == "screening" else result["probabilities"]
    order = ranked(result["probabilities"], _thresholds(result)) if task == "diagnosis" else []
    maps = _chosen_maps(task, result, scores, cams, order)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from matplotlib import rc_context
    from matplotlib.backends.backend_pdf import PdfPages

    with _LOCK, rc_context(_RC):
        doc = _Document()
        _header(doc, task, name)
        _images(doc, task, image, maps, scores, result, alpha)
        if task == "screening":
            _screening(doc, result, model)
        else:
            _diagnosis(doc, result, model, order)
        _maps_note(doc, result.get("method") or DEFAULT_MAP_METHOD)
        _model(doc, model)
        _trust(doc, model)
        doc.footers(f"DiaChestXR {__version__} · {DISCLAIMER}")
        metadata = {"Title": f"DiaChestXR {task} report", "Creator": f"DiaChestXR {__version__}"}
        with PdfPages(path, metadata=metadata) as pdf:
            for page in doc.pages:
                pdf.savefig(page)
    return path


def _thresholds(result: Mapping) -> dict[str, float]:
    """A diagnosis result's thresholds; without them, one 0.5 for all (ranking by
    probability, as `ranked` does with one threshold for every label)."""
    return dict(result.get("thresholds") or dict.fromkeys(result["probabilities"], 0.5))


def _chosen_maps(task: str, result: Mapping, scores: Mapping[str, float],
                 cams: Mapping[str, np.ndarray], order: list[str]) -> dict[str, np.ndarray]:
    """The maps the report draws, in [0, 1] float32: screening, the called class's;
    diagnosis, the top-ranked labels that have one (`order`: the app's and CLI's ranking)."""
    unknown = [l for l in cams if l not in scores]
    if unknown:
        raise ValueError(f"maps given for unknown label(s) {unknown}; the result's labels are "
                         f"{list(scores)}")
    if task == "screening":
        wanted = [result["label"]] if result["label"] in cams else []
    else:
        wanted = [l for l in order if l in cams][:TOP_FINDINGS]
    maps = {}
    for label in wanted:
        cam = np.asarray(cams[label])
        if cam.ndim != 2 or not cam.size:
            raise ValueError(f"the {label} map must be a 2-D array, got shape {cam.shape}")
        cam = cam.astype(np.float32) / 255.0 if cam.dtype == np.uint8 else cam.astype(np.float32)
        if not (cam.min() >= 0.0 and cam.max() <= 1.0):  # NaN fails too
            raise ValueError(f"the {label} map must hold values in [0, 1] (or uint8 0-255), "
                             f"got {cam.min()}..{cam.max()}")
        maps[label] = cam
    return maps


# ------------------------------------------------------------------------------ sections
def _header(doc: "_Document", task: str, name: str | None) -> None:
    title = {"screening": "COVID-19 / Pneumonia / Normal screening",
             "diagnosis": "NIH ChestX-ray14 findings (14 labels)"}[task]
    doc.line(f"DiaChestXR report — {title}", size=13.5, weight="bold")
    doc.line(DISCLAIMER, size=11, weight="bold", color="#b00020")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    image = f"Image: {printable(name, limit=100)} · " if name else ""
    doc.para(f"{image}Made {when} by DiaChestXR {__version__}. The model's output is not a "
             "diagnosis and must not guide patient care.", size=8, color="#444444")
    doc.gap(0.1)


def _images(doc: "_Document", task: str, image: np.ndarray, maps: dict[str, np.ndarray],
            scores: Mapping[str, float], result: Mapping, alpha: float) -> None:
    # screening: two large images side by side; diagnosis: the radiograph and 3 maps, 2 x 2
    side = 3.55 if len(maps) <= 1 else 2.5
    image = shrink(image, round(side * IMAGE_DPI))  # the overlays are drawn at this size too
    items = [(image, "The radiograph")]
    for label, cam in maps.items():
        if task == "screening":
            caption = f"Heatmap: {label} (called), {scores[label]:.1%}"
        else:
            found = "finding" if label in result.get("findings", ()) else "below threshold"
            threshold = (result.get("thresholds") or {}).get(label)
            if threshold is None:
                caption = f"Heatmap: {label}, {scores[label]:.1%}\n{found}"
            else:
                shown_p, shown_t = against_threshold(result, label, digits=1)
                caption = f"Heatmap: {label}, {shown_p}\nthreshold {shown_t}: {found}"
        if float(cam.max()) <= 0.0:
            caption += " — empty map"
        items.append((overlay(image, cam, alpha), caption))
    doc.images(items, side=side, per_row=2)
    if maps:
        doc.colour_bar("low", "high: raised the score most")
    elif task == "screening":
        doc.line(f"No heatmap was made for {result['label']}.", size=8)


def _screening(doc: "_Document", result: Mapping, model: Mapping) -> None:
    doc.heading("Result")
    doc.line(f"Called: {result['label']}", size=12, weight="bold")
    doc.table([f"{'class':<12} {'probability':>11}"] +
              [f"{label:<12} {p:>11.1%}  {'<- called' if label == result['label'] else ''}"
               for label, p in sorted(result["confidences"].items(), key=lambda kv: -kv[1])])
    threshold = result.get("covid19_threshold")
    if threshold is None:
        threshold = model.get("covid19_threshold")
    if threshold is None:
        doc.para("Call rule: the most probable class. The probabilities sum to 100%.")
    else:
        kept = (model.get("operating_point") or {}).get("adult_specificity")
        why = (f" (set to keep {kept:.0%} of adult non-COVID-19 validation radiographs from "
               "being called COVID-19)" if kept is not None else "")
        doc.para(f"Call rule (the COVID-19 operating point): COVID-19 when its probability "
                 f"reaches {threshold:.1%}{why}; otherwise the more probable of the other two "
                 "classes. The probabilities sum to 100%.")
    _notes(doc, result)


def _diagnosis(doc: "_Document", result: Mapping, model: Mapping, order: list[str]) -> None:
    doc.heading("Result")
    findings = result.get("findings") or []
    doc.para(f"Findings at or above their threshold: {', '.join(findings) or 'none'}",
             size=11, weight="bold")
    thresholds = result.get("thresholds") or {}
    rows = [f"{'label':<20} {'probability':>11} {'threshold':>10}  finding"]
    for label in order:  # the app's order: by how far each sits above its threshold
        shown_p, thr = (against_threshold(result, label, digits=1) if label in thresholds
                        else (f"{result['probabilities'][label]:.1%}", "-"))
        rows.append(f"{label:<20} {shown_p:>11} {thr:>10}  {'yes' if label in findings else ''}")
    doc.table(rows)
    specificity = (model.get("operating_point") or {}).get("specificity")
    rule = (f"the checkpoint's thresholds are, per label, the lowest that kept {specificity:.0%} "
            "specificity on validation" if specificity is not None else "the thresholds shown")
    doc.para(f"Each label is scored on its own (several may apply); {rule}. A probability is "
             "the model's score, not the chance that the finding is present.")
    _notes(doc, result)


def _notes(doc: "_Document", result: Mapping) -> None:
    """The result's warnings (e.g. a low-resolution film) and the radiograph check."""
    for warning in result.get("warnings") or []:
        doc.para(f"Warning: {warning}", weight="bold", color="#b00020")
    check = result.get("radiograph_check")
    if check:
        doc.para(f"Radiograph check: score {check['score']:.2f} (accepted from "
                 f"{check['threshold']:.2f}).", size=8)


def _maps_note(doc: "_Document", method: str) -> None:
    doc.heading("About the heatmaps")
    doc.para(MAPS_NOTE.format(method=METHOD_NAMES.get(method, method)))


def _model(doc: "_Document", model: Mapping) -> None:
    doc.heading("Model")
    arch = model.get("arch", "?")
    checkpoint = model.get("checkpoint_sha256") or "unknown (a model built in memory)"
    doc.para(f"DiaChestXR {__version__} · {model.get('task', '')} model: "
             f"{ARCH_NAMES.get(arch, arch)} ({arch}) · checkpoint sha256 {checkpoint} · "
             f"weights: {model.get('location') or model.get('source') or '?'}")


def _trust(doc: "_Document", model: Mapping) -> None:
    doc.heading("How far to trust this")
    outlook = list(model.get("outlook") or [])
    if outlook:
        for sentence in outlook:
            doc.para(sentence, bullet=True)
        return
    headline = model.get("headline_metrics") or {}
    figures = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in headline.items() if v is not None)
    doc.para(f"On its test split: {figures}." if figures
             else "This checkpoint records no test metrics: nothing says how well it does.")


# ------------------------------------------------------------------------------ layout
class _Document:
    """Pages of text lines and image grids placed top to bottom, in inches; a block that
    does not fit starts a new page."""

    def __init__(self) -> None:
        from matplotlib.text import Text

        # no ligatures (matplotlib >= 3.11 shapes text): one copy of each font, plain letters
        self.style = {"fontfeatures": ["-liga"]} if hasattr(Text, "set_fontfeatures") else {}
        self.pages: list = []
        self._new_page()

    def _new_page(self) -> None:
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(PAGE_W, PAGE_H))
        self.pages.append(self.fig)
        self.y = MARGIN  # from the top

    def _room(self, height: float) -> None:
        if self.y + height > PAGE_H - MARGIN and self.y > MARGIN:
            self._new_page()

    def _text(self, x: float, y: float, text: str, **style) -> None:
        """Text with its baseline `y` inches from the top, `x` from the left."""
        self.fig.text(x / PAGE_W, 1 - y / PAGE_H, text, va="baseline", **self.style, **style)

    def gap(self, inches: float) -> None:
        self.y += inches

    def line(self, text: str, size: float = 9, mono: bool = False, indent: float = 0.0,
             **style) -> None:
        height = size * LEADING / 72
        self._room(height)
        self.y += height
        self._text(MARGIN + indent, self.y - 0.3 * size / 72, text, fontsize=size,
                   family="monospace" if mono else "sans-serif", **style)

    def para(self, text: str, size: float = 9, bullet: bool = False, **style) -> None:
        indent = 0.18 if bullet else 0.0
        # DejaVu Sans averages about 0.55 em a character
        width = int((TEXT_W - indent) * 72 / (0.55 * size))
        lines = textwrap.wrap(text, width, break_on_hyphens=False)  # keep "0.84-0.97" whole
        self._room(len(lines) * size * LEADING / 72)  # a paragraph stays on one page
        for i, line in enumerate(lines):
            if bullet and i == 0:
                self._text(MARGIN, self.y + size * (LEADING - 0.3) / 72, "•", fontsize=size)
            self.line(line, size=size, indent=indent, **style)

    def table(self, rows: list[str], size: float = 9) -> None:
        """Monospaced rows, kept on one page."""
        self._room(len(rows) * size * LEADING / 72)
        for row in rows:
            self.line(row, size=size, mono=True)

    def heading(self, text: str) -> None:
        self._room(0.7)  # a heading is never the last line of a page
        self.gap(0.12)
        self.line(text, size=11.5, weight="bold")

    def images(self, items: list[tuple[np.ndarray, str]], side: float, per_row: int) -> None:
        """Images in rows of `per_row`, each fitted in a `side`-inch square, tops aligned,
        each captioned under its row (captions: up to two lines)."""
        gap, caption = 0.15, 0.4
        for start in range(0, len(items), per_row):
            row = items[start:start + per_row]
            # each image's box keeps its aspect, so a caption sits right under its image
            boxes = [(side * min(1, w / h), side * min(1, h / w)) for h, w in
                     (img.shape[:2] for img, _ in row)]
            height = max(h for _, h in boxes)
            self._room(height + caption)
            for col, ((img, text), (w, h)) in enumerate(zip(row, boxes)):
                x = MARGIN + col * (side + gap)
                ax = self.fig.add_axes((x / PAGE_W, 1 - (self.y + h) / PAGE_H,
                                        w / PAGE_W, h / PAGE_H))
                # "none": the pixels go into the PDF as they are, not resampled to a dpi
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255,
                          interpolation="none")
                ax.set_axis_off()
                for i, line in enumerate(text.splitlines()):
                    self._text(x, self.y + height + 0.16 + i * 0.15, line, fontsize=8)
            self.y += height + caption

    def colour_bar(self, low: str, high: str) -> None:
        """The heatmaps' colour scale (pytorch-grad-cam draws with the JET colour map)."""
        self._room(0.3)
        self._text(MARGIN, self.y + 0.16, low, fontsize=7)
        ax = self.fig.add_axes(((MARGIN + 0.3) / PAGE_W, 1 - (self.y + 0.2) / PAGE_H,
                                2.0 / PAGE_W, 0.12 / PAGE_H))
        ax.imshow(np.linspace(0, 1, 256)[None], cmap="jet", aspect="auto")
        ax.set_axis_off()
        self._text(MARGIN + 2.4, self.y + 0.16, high, fontsize=7)
        self.y += 0.3

    def footers(self, text: str) -> None:
        for i, fig in enumerate(self.pages, 1):
            fig.text(MARGIN / PAGE_W, 0.35 / PAGE_H, f"{text} · page {i} of {len(self.pages)}",
                     fontsize=7, color="#444444", **self.style)
