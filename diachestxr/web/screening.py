"""The Screening tab: COVID-19 / Pneumonia / Normal, the called class's heatmap beside the
radiograph, and the map of any class on request."""

from __future__ import annotations

from typing import Sequence

import gradio as gr

from ..examples import Example
from ..registry import get_spec
from . import views, widgets
from .session import SessionState
from .taskui import After, TaskUI
from .widgets import Parts


class ScreeningUI(TaskUI):
    task, prefix, action = "screening", "screen", "Screen this X-ray"
    api_inputs = ("alpha", "method")
    clear_outputs = ("label", "overlays", "compare", "caption", "json", "download", "pick",
                     "state", "error")
    status = "caption"

    def layout(self, parts: Parts, examples: Sequence[Example]) -> None:
        with gr.Column(scale=4, min_width=280):
            widgets.upload_column(parts, self.task, self.prefix, self.action, examples)
        with gr.Column(scale=5, min_width=320, elem_id="screen-result"):
            # the API's overlay (the predicted class's heatmap); the page shows the
            # radiograph beside the heatmap instead, in the slider below
            parts["overlays"] = gr.Image(label="Grad-CAM heatmap", type="numpy", format="png",
                                         interactive=False, visible=False,
                                         elem_id="screen-overlay")
            parts["compare"] = widgets.compare_slider(self.prefix, max_height=420)
            parts["caption"] = gr.Markdown(elem_classes=["small"], elem_id="screen-caption")
            widgets.colour_bar()
        with gr.Column(scale=4, min_width=280):
            parts["label"] = gr.Label(label="Prediction", num_top_classes=3,
                                      elem_id="screen-label")
            parts["pick"] = gr.Radio(choices=list(get_spec(self.task).labels),
                                     label="Show the heatmap for", interactive=False,
                                     elem_id="screen-class")
            parts["alpha"] = widgets.opacity_slider(self.prefix)
            parts["method"] = widgets.method_choice(self.prefix)
            parts["download"] = widgets.download_button(self.prefix)
            widgets.report_widgets(parts, self.prefix)
            parts["json"] = widgets.result_json(self.api_name)

    def clear(self) -> tuple:
        return (None, None, None, "", None, gr.DownloadButton(value=None, interactive=False),
                gr.Radio(value=None, interactive=False), None, gr.Markdown("", visible=False))

    def views(self, parts: Parts) -> list[dict]:
        outputs = ("label", "pick", "caption", "download", "compare", "state")
        return [dict(fn=self.view, inputs=[parts["state"], parts["alpha"], parts["pick"]],
                     outputs=[parts[name] for name in outputs], api_visibility="private")]

    def view(self, state: SessionState | None, opacity: float, picked: str | None = None) -> tuple:
        """UI only: the label widget, the class picker and the radiograph beside its heatmap
        after a run: the predicted class's, or the class the user picked before a new map
        method (a new upload clears the pick)."""
        if not state:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), state
        result = state["result"]
        label = picked if picked in state["cams"] else result["label"]
        caption = (views.screening_caption(result, self._trust()) if label == result["label"]
                   else views.class_caption(result, label))
        return (self.service.files.label_json(views.label_value(result)),
                gr.Radio(value=label, interactive=True), caption,
                self.service.result_file(state),
                self.service.compare(state, label, opacity), state)

    def explain(self, label: str | None, opacity: float, state: SessionState | None) -> tuple:
        """UI only: the map for any class, redrawn from the maps the last call computed."""
        if not state or not label:
            return gr.skip(), gr.skip(), state
        return (self.service.compare(state, label, opacity),
                views.class_caption(state["result"], label), state)

    def wire(self, parts: Parts, after: After) -> None:
        for event in (parts["pick"].input, parts["alpha"].release):
            event(self.explain, inputs=[parts["pick"], parts["alpha"], parts["state"]],
                  outputs=[parts["compare"], parts["caption"], parts["state"]],
                  api_visibility="private")
