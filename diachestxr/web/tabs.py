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
    clear = dict(fn=ui.clear, outputs=[p[n] for n in ui.clear_outputs], queue=False,
                 api_visibility="private")
    inputs = [p["file"], *(p[n] for n in ui.api_inputs)]
    outputs = [p[n] for n in API_OUTPUTS]
    # queued: it re-reads the upload, so it counts against the concurrency limit too
    failed = dict(fn=_failure(ui), inputs=[p["file"]], outputs=[p["error"]],
                  api_visibility="private")

    def after(event: gr.events.Dependency) -> gr.events.Dependency:
        for view in ui.views(p):
            event = event.success(**view)
        return event

    def analyse(start: gr.events.Dependency, **api) -> None:
        step = start.then(ui.api, inputs=inputs, outputs=outputs, **api)
        after(step).then(fn=None, js=views.scroll_js(f"{ui.prefix}-result"))
        step.failure(**failed).then(fn=None, js=views.scroll_js(f"{ui.prefix}-error", whole=True))

    analyse(gr.on([p["run"].click, p["file"].upload], **clear), api_name=ui.api_name)
    if p["examples"] is not None:
        analyse(p["examples"].load_input_event.then(**clear), api_visibility="private")
    p["file"].clear(**clear)
    after(p["method"].input(_again(ui), inputs=[p["state"], *inputs[1:]], outputs=outputs,
                            api_visibility="private"))
    ui.wire(p, after)


def _again(ui: TaskUI) -> Callable:
    def again(state, *inputs):
        """UI only: the map method changed; new maps for the radiograph of the last result."""
        return ui.service.remap(ui.task, state, *inputs)
    return again


def _failure(ui: TaskUI) -> Callable:
    def explain(image) -> gr.Markdown:
        """UI only: after a failed run, the reason stays on the page beside the upload (the
        toast fades)."""
        return gr.Markdown(views.failure_markdown(ui.service.failure(ui.task, image)),
                           visible=True)
    return explain
