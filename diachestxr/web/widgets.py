"""The Gradio components both tabs use, built the same way in each (element ids carry the
tab's prefix, "screen" or "diagnose": the CSS and the browser tests find them by it)."""

from __future__ import annotations

from typing import Sequence

import gradio as gr

from ..examples import Example
from ..explain import DEFAULT_ALPHA, DEFAULT_METHOD
from ..registry import MAP_METHODS
from . import views

Parts = dict  # a tab's components by role ("file", "state", "json", ...), for the wiring


def upload_column(parts: Parts, task: str, prefix: str, action: str,
                  examples: Sequence[Example]) -> None:
    """A tab's input column: the file box (taken as a path, read by our reader), its button,
    the box where a refusal stays, and the task's sample images."""
    parts["file"] = gr.File(label="Chest X-ray: PNG, JPEG, DICOM", type="filepath", height=170,
                            elem_id=f"{prefix}-file")
    parts["run"] = gr.Button(action, variant="primary", elem_id=f"{prefix}-run")
    parts["error"] = gr.Markdown(visible=False, elem_id=f"{prefix}-error",
                                 elem_classes=["error-box"])
    parts["examples"] = examples_block(task, parts["file"], examples)


def examples_block(task: str, file: gr.File, examples: Sequence[Example]) -> gr.Examples | None:
    """Clickable thumbnails of the sample images for `task` (none: no block at all)."""
    items = [e for e in examples if e.task == task]
    if not items:
        return None
    # A hidden image column gives the thumbnails; the file column is what gets loaded.
    thumb = gr.Image(type="filepath", visible=False)
    block = gr.Examples(examples=[[str(e.path), str(e.path)] for e in items],
                        inputs=[thumb, file], visible_columns=[0], cache_examples=False,
                        label="Sample images: click one to analyse it",
                        examples_per_page=12, api_visibility="private",
                        elem_id=f"{task}-examples")
    gr.Markdown(views.examples_credits(items), elem_classes=["small"])
    return block


def opacity_slider(prefix: str) -> gr.Slider:
    return gr.Slider(0.0, 1.0, value=DEFAULT_ALPHA, step=0.05, label="Heatmap opacity",
                     elem_id=f"{prefix}-alpha")


def method_choice(prefix: str) -> gr.Dropdown:
    return gr.Dropdown(choices=views.method_choices(MAP_METHODS), value=DEFAULT_METHOD,
                       label="Map method", elem_id=f"{prefix}-method",
                       info="Grad-CAM, or another gradient-based class activation map")


def download_button(prefix: str) -> gr.DownloadButton:
    return gr.DownloadButton("Download result (JSON)", interactive=False,
                             elem_id=f"{prefix}-download")


def report_widgets(parts: Parts, prefix: str) -> None:
    """A button that makes the PDF report of the last result, and the file it gives."""
    parts["report"] = gr.Button("Make a PDF report", size="sm", elem_id=f"{prefix}-report")
    parts["report_file"] = gr.File(label="Report (PDF)", visible=False, interactive=False,
                                   elem_id=f"{prefix}-report-file")


def result_json(api_name: str) -> gr.JSON:
    """The result as the API returns it, folded away."""
    with gr.Accordion(f"Result as JSON (what the /{api_name} API returns)", open=False):
        return gr.JSON(label="result", show_label=False)


def compare_slider(prefix: str, max_height: int) -> gr.ImageSlider:
    """The radiograph beside a heatmap (download: the heatmap, the slider's second image)."""
    # the handle starts at the left edge: the whole heatmap shows until the user drags it
    return gr.ImageSlider(label=views.COMPARE_LABEL, type="filepath", format="png",
                          interactive=False, max_height=max_height, slider_position=0,
                          buttons=["download", "fullscreen"], elem_id=f"{prefix}-compare",
                          elem_classes=["compare"])


def colour_bar() -> gr.HTML:
    return gr.HTML(views.COLOUR_BAR)
