"""One builder for both tabs: the heading, the task's columns, the model card, and the
event chain every task shares.

A new input (the button, an upload or a sample image) first clears the old result, so an
error never sits beside a stale one; then the API function runs; then the UI-only views draw
the result, or the reason for a failure stays beside the upload. A new map method reruns the
model on the session's copy of the radiograph (the upload itself is deleted once answered).
"""

from __future__ import annotations

from typing import Callable, Sequence

import gradio as gr

from ..examples import Example
from . import views
from .diagnosis import DiagnosisUI
from .screening import ScreeningUI
from .service import Service
from .session import STATE_TTL_S
from .taskui import API_OUTPUTS, TaskUI
from .widgets import Parts

TASK_UIS: dict[str, type[TaskUI]] = {"screening": ScreeningUI, "diagnosis": DiagnosisUI}


def task_tab(task: str, service: Service, examples: Sequence[Example]) -> TaskUI:
    """Build the tab of `task` inside the current gr.Tabs, with its events."""
    ui = TASK_UIS[task](service)
    # short labels: both tabs fit a phone's width (longer ones went behind a "⋯" menu)
    with gr.Tab(task.capitalize(), id=task):
        gr.Markdown(views.tab_heading(task, service.model_info(task), service.errors.get(task)),
                    elem_classes=["small"])
        parts: Parts = {"state": gr.State(time_to_live=STATE_TTL_S)}
        with gr.Row():
            ui.layout(parts, examples)
        with gr.Accordion(f"About the {task} model", open=False):
            gr.Markdown(service.card(task))
        _wire(ui, parts)
    return ui


def _wire(ui: TaskUI, p: Parts) -> None:
    """The event chain both tabs share (see the module doc), then the task's own events."""
    def and_report(fn: Callable) -> Callable:  # the last result's report goes with it
        return lambda: (*fn(), gr.File(value=None, visible=False))

    clear = dict(fn=and_report(ui.clear), queue=False, api_visibility="private",
                 outputs=[*(p[n] for n in ui.clear_outputs), p["report_file"]])
    analysing = {**clear, "fn": and_report(ui.analysing), "js": views.CLOSE_TOASTS}
    inputs = [p["file"], *(p[n] for n in ui.api_inputs)]
    outputs = [p[n] for n in API_OUTPUTS]
    # queued: it re-reads the upload, so it counts against the concurrency limit too
    failed = dict(fn=_failure(ui), inputs=[p["file"]], outputs=[p["error"], p[ui.status]],
                  api_visibility="private")

    def after(event: gr.events.Dependency) -> gr.events.Dependency:
        for view in ui.views(p):
            event = event.success(**view)
        return event

    def analyse(start: gr.events.Dependency, **api) -> None:
        # the progress shows on the status line ("analysing…"), not on every output box
        step = start.then(ui.api, inputs=inputs, outputs=outputs, show_progress_on=p[ui.status],
                          **api)
        after(step).then(fn=None, js=views.scroll_js(f"{ui.prefix}-result"))
        step.failure(**failed).then(fn=None, js=views.scroll_js(f"{ui.prefix}-error", whole=True))

    analyse(gr.on([p["run"].click, p["file"].upload], **analysing), api_name=ui.api_name)
    if p["examples"] is not None:
        analyse(p["examples"].load_input_event.then(**analysing), api_visibility="private")
    p["file"].clear(**clear)
    after(p["method"].input(_again(ui), inputs=[p["state"], *inputs[1:]], outputs=outputs,
                            api_visibility="private"))
    p["report"].click(_report(ui), inputs=[p["state"]], outputs=[p["report_file"]],
                      api_visibility="private")
    ui.wire(p, after)


def _again(ui: TaskUI) -> Callable:
    def again(state, *inputs):
        """UI only: the map method changed; new maps for the radiograph of the last result."""
        return ui.service.remap(ui.task, state, *inputs)
    return again


def _report(ui: TaskUI) -> Callable:
    def report(state) -> gr.File:
        """UI only: the PDF report of the last result (diachestxr.report)."""
        return gr.File(value=ui.service.report(ui.task, state), visible=True)
    return report


def _failure(ui: TaskUI) -> Callable:
    def explain(image) -> tuple[gr.Markdown, str]:
        """UI only: after a failed run, the reason stays on the page beside the upload, and
        the status line no longer says "analysing"."""
        return (gr.Markdown(views.failure_markdown(ui.service.failure(ui.task, image)),
                            visible=True), "")
    return explain
