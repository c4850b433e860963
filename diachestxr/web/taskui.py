"""What one task adds to the tab every task shares (`tabs.task_tab`): its columns, its API
function, and its UI-only events. The tab builds the common event chain around it."""

from __future__ import annotations

from typing import Callable, Sequence

import gradio as gr

from ..examples import Example
from . import views
from .service import Service
from .widgets import Parts

# What every API function returns, by part name: the result, its overlay(s) and the
# session's state. The result's JSON file is made by the page's view step, for its download
# button: every output file costs an API caller one more HTTP download (gradio_client makes a
# new connection, TLS context included, for each: 20-30 ms here), for data it already has.
API_OUTPUTS = ("json", "overlays", "state")

After = Callable[[gr.events.Dependency], gr.events.Dependency]


class TaskUI:
    """The base of ScreeningUI and DiagnosisUI."""

    task: str
    prefix: str  # element ids ("screen-file", ...), and the API function's name
    action: str  # the run button's text
    api_inputs: tuple[str, ...]  # the parts the API function takes after the file
    clear_outputs: tuple[str, ...]  # the parts `clear` resets, in its order
    status: str  # the part (in clear_outputs) that says "analysing" while the model runs

    def __init__(self, service: Service) -> None:
        self.service = service

    @property
    def api_name(self) -> str:
        return self.prefix  # "screen", "diagnose": the endpoint names

    @property
    def api(self) -> Callable:
        """The endpoint's function (service.screen or service.diagnose)."""
        return getattr(self.service, self.api_name)

    def _trust(self) -> str:
        """The note beside every answer of this task (views.trust_note)."""
        return views.trust_note(self.service.model_info(self.task))

    def layout(self, parts: Parts, examples: Sequence[Example]) -> None:
        """Build the tab's columns (inside a gr.Row), naming each component in `parts`;
        the upload column, "alpha", "method", "json" and "overlays" are expected by the
        common wiring."""
        raise NotImplementedError

    def clear(self) -> tuple:
        """UI only: forget the previous image's result (and error)."""
        raise NotImplementedError

    def analysing(self) -> tuple:
        """UI only: `clear`, and say that the analysis runs until its answer replaces it."""
        values = list(self.clear())
        values[self.clear_outputs.index(self.status)] = views.ANALYSING
        return tuple(values)

    def views(self, parts: Parts) -> list[dict]:
        """The events that draw a new result on the page, run one after the other."""
        raise NotImplementedError

    def wire(self, parts: Parts, after: After) -> None:
        """The task's own events; `after(event)` runs `views` when the event succeeds."""
        raise NotImplementedError
