"""The Diagnosis tab: the 14 NIH ChestX-ray14 probabilities against their thresholds, the
heatmaps of the top-ranked labels (inference.ranked), and any label's map beside the radiograph."""

from __future__ import annotations

from typing import Sequence

import gradio as gr

from ..examples import Example
from ..registry import get_spec
from . import session, views, widgets
from .session import SessionState
from .taskui import API_OUTPUTS, After, TaskUI
from .widgets import Parts


class DiagnosisUI(TaskUI):
    task, prefix, action = "diagnosis", "diagnose", "Diagnose this X-ray"
    api_inputs = ("calibrated", "threshold", "alpha", "method")
    clear_outputs = ("summary", "table", "json", "overlays", "download", "compare", "pick",
                     "state", "error")
    status = "summary"

    def layout(self, parts: Parts, examples: Sequence[Example]) -> None:
        with gr.Column(scale=4, min_width=280):
            widgets.upload_column(parts, self.task, self.prefix, self.action, examples)
            with gr.Accordion("Decision thresholds", open=False):
                parts["calibrated"] = gr.Checkbox(value=True, elem_id="diagnose-calibrated",
                                                  label="Use the calibrated per-label thresholds")
                parts["threshold"] = gr.Slider(0.01, 0.99, value=0.5, step=0.01,
                                               interactive=False, elem_id="diagnose-threshold",
                                               label="One threshold for every label")
            parts["alpha"] = widgets.opacity_slider(self.prefix)
            parts["method"] = widgets.method_choice(self.prefix)
        with gr.Column(scale=5, min_width=320, elem_id="diagnose-result"):
            parts["summary"] = gr.Markdown(views.NO_RESULT, elem_id="diagnose-summary")
            parts["table"] = gr.HTML(elem_id="diagnose-table")
            parts["download"] = widgets.download_button(self.prefix)
            widgets.report_widgets(parts, self.prefix)
            parts["json"] = widgets.result_json(self.api_name)
        with gr.Column(scale=5, min_width=320):
            self._maps_column(parts)

    def _maps_column(self, parts: Parts) -> None:
        """The radiograph beside one label's heatmap (the top-ranked first), and the API's
        overlays: the top-ranked labels; a click shows one above."""
        parts["pick"] = gr.Dropdown(choices=self._label_choices(), value=None,
                                    label="Show the heatmap for (any label)",
                                    elem_id="diagnose-pick")
        parts["compare"] = widgets.compare_slider(self.prefix, max_height=400)
        gr.Markdown(views.COMPARE_HINT.split(". ")[0] + ".", elem_classes=["small"])
        widgets.colour_bar()
        gr.Markdown("**Heatmaps of the top-ranked labels** (▲ = finding): click one to see "
                    "it beside the radiograph", elem_classes=["small"])
        parts["overlays"] = gr.Gallery(label="Heatmaps of the top-ranked labels",
                                       show_label=False, format="png", columns=3, height="auto",
                                       object_fit="contain", allow_preview=False, buttons=[],
                                       interactive=False, elem_id="diagnose-gallery")

    def _label_choices(self) -> list[tuple[str, str]]:
        return views.label_choices(get_spec(self.task).labels)

    def clear(self) -> tuple:
        return (views.NO_RESULT, "", None, gr.Gallery(value=None, visible=False),
                gr.DownloadButton(value=None, interactive=False), None,
                gr.Dropdown(choices=self._label_choices(), value=None), None,
                gr.Markdown("", visible=False))

    def views(self, parts: Parts) -> list[dict]:
        return [dict(fn=self.view, inputs=[parts["state"]], api_visibility="private",
                     outputs=[parts[n] for n in ("summary", "table", "download", "overlays")]),
                dict(fn=self.pick, inputs=[parts["pick"], parts["alpha"], parts["state"]],
                     outputs=[parts["pick"], parts["compare"], parts["state"]],
                     api_visibility="private")]

    def view(self, state: SessionState | None) -> tuple:
        """UI only: the summary line and the table of all 14 probabilities."""
        if not state:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        result, info = state["result"], self.service.model_info(self.task)
        shown = _first_drawn(state)  # the label the slider opens on: its thumbnail highlighted
        selected = result["explained"].index(shown) if shown in result["explained"] else None
        return (views.diagnosis_summary(result, info.specificity, info.prevalence, self._trust()),
                views.diagnosis_table(result, info.prevalence),
                self.service.result_file(state),
                gr.Gallery(selected_index=selected, visible=True))

    def pick(self, label: str | None, opacity: float, state: SessionState | None) -> tuple:
        """UI only: the radiograph beside the map of the label the user picked (by default
        the top-ranked one), from the maps already computed. The picker lists every label
        with its caption, in the result's order, and names the label shown."""
        if not state:
            return gr.skip(), None, state
        result = state["result"]
        if label not in state["cams"]:
            label = _first_drawn(state)
        choices = views.pick_choices(result, session.empty_maps(state))
        return (gr.Dropdown(choices=choices, value=label),
                self.service.compare(state, label, opacity), state)

    def select(self, evt: gr.SelectData, opacity: float, state: SessionState | None) -> tuple:
        """UI only: a click on a gallery thumbnail shows that label beside the radiograph."""
        if not state or evt.index is None:
            return gr.skip(), gr.skip(), state
        return self.pick(state["result"]["explained"][evt.index], opacity, state)

    def opacity(self, label: str | None, opacity: float, state: SessionState | None) -> tuple:
        """UI only: new overlay opacity, from the maps already computed."""
        if not state:
            return gr.skip(), gr.skip(), state
        _, compare, state = self.pick(label, opacity, state)
        return self.service.gallery(state, opacity), compare, state

    def rethreshold(self, calibrated: bool, threshold: float, opacity: float,
                    state: SessionState | None) -> tuple:
        """UI only: thresholds changed; new findings from the stored probabilities."""
        if not state:
            return gr.skip(), gr.skip(), state
        thresholds = self.service.thresholds(calibrated, threshold)
        return self.service.diagnosis_outputs(self.service.rethreshold(state, thresholds),
                                              opacity)

    def wire(self, parts: Parts, after: After) -> None:
        p = parts
        p["calibrated"].input(lambda calibrated: gr.Slider(interactive=not calibrated),
                              inputs=[p["calibrated"]], outputs=[p["threshold"]],
                              api_visibility="private")
        after(gr.on([p["calibrated"].input, p["threshold"].release], self.rethreshold,
                    inputs=[p["calibrated"], p["threshold"], p["alpha"], p["state"]],
                    outputs=[p[name] for name in API_OUTPUTS], api_visibility="private"))
        picked = [p["pick"], p["compare"], p["state"]]
        p["pick"].input(self.pick, inputs=[p["pick"], p["alpha"], p["state"]], outputs=picked,
                        api_visibility="private")
        p["alpha"].release(self.opacity, inputs=[p["pick"], p["alpha"], p["state"]],
                           outputs=[p["overlays"], p["compare"], p["state"]],
                           api_visibility="private")
        p["overlays"].select(self.select, inputs=[p["alpha"], p["state"]], outputs=picked,
                             api_visibility="private")


def _first_drawn(state: SessionState) -> str:
    """The label the slider opens on: the top-ranked one whose map shows something (an
    empty map is the plain radiograph), else the top-ranked one."""
    result, empty = state["result"], set(session.empty_maps(state))
    return next((l for l in result["probabilities"] if l not in empty), result["explained"][0])
