"""The server side of the demo: the models, the two API functions (`/screen`, `/diagnose`)
and the redraws the page asks for. Decisions come from the package (the Predictor, the
findings rule); what the page says comes from `views`; what a session keeps from `session`.
"""

from __future__ import annotations

import hmac
import html
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import gradio as gr
import numpy as np

from .. import __version__, profile
from ..card import demote_headings
from ..explain import DEFAULT_ALPHA, DEFAULT_METHOD
from ..gate import RadiographGate
from ..inference import TOP_FINDINGS, Predictor, findings_at, ranked
from ..io import ImageReadError
from ..registry import TASKS
from ..weights import WeightsError
from . import session, views
from .session import ResultExpired, ResultFiles, SessionState

log = logging.getLogger("diachestxr.web")


def load_predictors(tasks: Iterable[str] = TASKS, weights_dir: str | os.PathLike | None = None
                    ) -> tuple[dict[str, Predictor], dict[str, str]]:
    """One Predictor per task, so a missing checkpoint disables one tab, not the app: the
    predictors, and each failed task's WeightsError message (the app never falls back to
    random weights)."""
    predictors, errors = {}, {}
    try:  # one radiograph check, resolved and loaded once, serves every task
        checker = RadiographGate.load(weights_dir)
    except WeightsError as e:
        log.error("radiograph check not loaded: %s", e)
        return {}, dict.fromkeys(tasks, str(e))
    for task in tasks:
        try:
            predictors[task] = Predictor(tasks=[task], weights_dir=weights_dir, checker=checker)
        except WeightsError as e:
            log.error("%s model not loaded: %s", task, e)
            errors[task] = str(e)
    return predictors, errors


def _error(message: str, title: str) -> gr.Error:
    # the pop-up renders HTML: text from a file (a DICOM tag, a file name) must not become markup
    return gr.Error(html.escape(message, quote=False), title=title, print_exception=False)


@contextmanager
def user_errors(name: str, failures: dict[str, str] | None = None, key: str = "") -> Iterator[None]:
    """Our reader's and Predictor's messages go to the user as they are; anything else is
    logged here with its traceback and reported without one. With `failures`, the message
    is also kept under `key` for the page's failure view (an event's exception does not
    reach the next event, and the upload is gone by then)."""
    def fail(message: str, title: str) -> gr.Error:
        if failures is not None:
            failures[key] = message
            while len(failures) > MAX_REMEMBERED_FAILURES:
                failures.pop(next(iter(failures)))
        return _error(message, title)

    try:
        yield
    except gr.Error:
        raise
    except (ImageReadError, ValueError) as e:
        raise fail(str(e), "Cannot analyse this file") from None
    except ResultExpired as e:
        raise fail(str(e), "Result expired") from None
    except Exception:
        log.exception("analysing an upload failed")  # its name stays out of the server's log
        raise fail(f"{name}: analysis failed because of an internal error (logged on the "
                   "server). Try another image.", "Internal error") from None


MAX_REMEMBERED_FAILURES = 256
UPLOAD_ID_KEY = os.urandom(16)  # per server run: an upload's id cannot be traced to its name


def upload_id(name: str) -> str:
    """What results call an upload instead of its file name (which may name the patient):
    the same name gives the same id while the server runs, and nothing else does."""
    return "upload-" + hmac.new(UPLOAD_ID_KEY, name.encode("utf-8", "replace"), "sha256").hexdigest()[:12]


@contextmanager
def consumed(image: Any, keep: frozenset[str] = frozenset()) -> Iterator[str]:
    """The upload's path for one analysis; afterwards the upload is deleted (the session
    keeps the radiograph the redraws need, as a PNG once the page shows it, nothing of the
    original file) unless it is in `keep` (Gradio's cached copies of the sample images, used
    by every visitor)."""
    path = _path(image)
    try:
        yield path
    finally:
        with profile.step("cleanup"):
            if path not in keep:
                session.forget_upload(path)
            session.release_memory()


def _path(image: Any) -> str:
    if image is None:
        raise _error(views.UPLOAD_FIRST, "No image")
    return str(image)


class Service:
    """The models of one demo, its result files, and every function its events call."""

    def __init__(self, predictors: Mapping[str, Predictor], errors: Mapping[str, str] | None = None,
                 files: ResultFiles | None = None) -> None:
        self.predictors = dict(predictors)
        self.errors = {task: (errors or {}).get(task, "no model was loaded for it")
                       for task in TASKS if task not in self.predictors}
        self.files = files or ResultFiles()
        self._infos: dict[str, views.ModelInfo | None] = {}
        self._failures: dict[str, str] = {}  # upload path -> why its analysis failed
        self.shared_files: frozenset[str] = frozenset()  # never deleted (see `consumed`)

    # ------------------------------------------------------------------- the models
    def predictor(self, task: str) -> Predictor:
        if task not in self.predictors:
            raise _error(views.unavailable(task, self.errors[task]), "Model not loaded")
        return self.predictors[task]

    def model_info(self, task: str) -> views.ModelInfo | None:
        """What the page says about the task's model (None: not loaded, see `errors`)."""
        if task not in self.predictors:
            return None
        if task not in self._infos:  # the checkpoint does not change while the app runs
            predictor = self.predictors[task]
            info = predictor.info(task)
            self._infos[task] = views.ModelInfo(
                arch=info["arch"], source=info["source"], location=info["location"],
                outlook=tuple(info["outlook"]), stranger_auroc=info["stranger_auroc"],
                specificity=predictor.operating_point(task).get("specificity"),
                prevalence=info["prevalence"])
        return self._infos[task]

    def card(self, task: str) -> str:
        """The model card, its headings nested under the tab's."""
        if task not in self.predictors:
            return self.errors[task]
        return demote_headings(self.predictors[task].model_card(task), levels=2)

    def _summary(self, task: str) -> dict:
        info = self.model_info(task)
        return {"arch": info.arch, "weights": info.source, "location": info.location}

    def _stamp(self, result: dict, task: str) -> dict:
        """The fields every API result ends with."""
        return {**result, "model": self._summary(task), "version": __version__,
                "disclaimer": views.DISCLAIMER}

    # -------------------------------------------------------------------- screening
    def screen(self, image: str, opacity: float = DEFAULT_ALPHA, method: str = DEFAULT_METHOD
               ) -> tuple[dict, str, SessionState]:
        """Research demo, not for clinical use. Screens one frontal chest radiograph (PNG, JPEG
        or DICOM; an MCP client sends an http(s) or base64 data: URL) for COVID-19 / Pneumonia
        / Normal, with a Grad-CAM heatmap.

        method: the map method (gradcam, gradcam++, xgradcam, hirescam, layercam).
        Returns (result, overlay): result = {"task", "file", "label", "confidences" {class:
        p, summing to 1}, "explained", "method", "model", "version", "disclaimer"}; overlay =
        the heatmap of the predicted class on the image (JPEG, the input's aspect, at most
        1024 px).
        """
        predictor = self.predictor("screening")
        with profile.timed("/screen"), consumed(image, self.shared_files) as path:
            return self._screen(predictor, path, upload_id(Path(path).name), opacity, method)

    def _screen(self, predictor: Predictor, path: str, file_id: str, opacity: float, method: str
                ) -> tuple[dict, str, SessionState]:
        method = method or DEFAULT_METHOD
        with user_errors(Path(path).name, self._failures, path):
            # all three maps cost about as much as one: any class the user picks is ready
            r = predictor.screen(path, explain="all", alpha=float(opacity), method=method)
        result = self._stamp({**r.to_dict(), "file": file_id, "explained": r.label,
                              "method": method}, "screening")
        with profile.step("state"):
            state = session.new_state(r, result, self.files)
        with profile.step("overlay"):
            return result, self.draw(state, r.label, opacity, image=r.image), state

    # -------------------------------------------------------------------- diagnosis
    def diagnose(self, image: str, calibrated_thresholds: bool = True, threshold: float = 0.5,
                 opacity: float = DEFAULT_ALPHA, method: str = DEFAULT_METHOD
                 ) -> tuple[dict, list[tuple[str, str]], SessionState]:
        """Research demo, not for clinical use. Probabilities of the 14 NIH ChestX-ray14
        findings for one frontal chest radiograph (PNG, JPEG or DICOM; an MCP client sends an
        http(s) or base64 data: URL), with Grad-CAM heatmaps.

        calibrated_thresholds: use the checkpoint's per-label thresholds (default); if False,
        `threshold` applies to every label. method: the map method (gradcam, gradcam++,
        xgradcam, hirescam, layercam). Returns (result, overlays): result = {"task", "file",
        "probabilities" {label: p, furthest above its own threshold first}, "thresholds",
        "findings" [labels at or above their threshold, in that order], "explained" [the
        mapped labels: the first three], "warnings", "method", "model", "version",
        "disclaimer"}; overlays = heatmaps of those labels (a gallery of JPEG thumbnails, at
        most 320 px: [{"image", "caption"}]).
        """
        predictor = self.predictor("diagnosis")
        thresholds = self.thresholds(calibrated_thresholds, threshold)
        with profile.timed("/diagnose"), consumed(image, self.shared_files) as path:
            return self._diagnose(predictor, path, upload_id(Path(path).name), thresholds,
                                  opacity, method)

    def _diagnose(self, predictor: Predictor, path: str, file_id: str,
                  thresholds: Mapping[str, float], opacity: float, method: str
                  ) -> tuple[dict, list[tuple[str, str]], SessionState]:
        method = method or DEFAULT_METHOD
        with user_errors(Path(path).name, self._failures, path):
            # all 14 maps cost about as much as one: every label the user picks is ready
            r = predictor.diagnose(path, thresholds=thresholds, explain="all",
                                   alpha=float(opacity), method=method)
        extra = {k: v for k, v in r.to_dict().items() if k in ("warnings", "radiograph_check")}
        result = self._stamp({"task": "diagnosis", "file": file_id,
                              "probabilities": r.probabilities, "method": method, **extra},
                             "diagnosis")
        with profile.step("state"):
            state = session.new_state(r, result, self.files)
        return self.diagnosis_outputs(self.rethreshold(state, thresholds), opacity, r.image)

    def thresholds(self, calibrated: bool, threshold: float) -> dict[str, float]:
        with user_errors("thresholds"):
            return self.predictor("diagnosis").thresholds(None if calibrated else float(threshold))

    @staticmethod
    def rethreshold(state: SessionState, thresholds: Mapping[str, float]) -> SessionState:
        """The state with its result at these thresholds (no model run): the findings, and
        the probabilities and mapped labels in the display order (inference.ranked)."""
        result = state["result"]
        order = ranked(result["probabilities"], thresholds)
        probabilities = {label: result["probabilities"][label] for label in order}
        return {**state, "result": {**result, "probabilities": probabilities,
                                    "thresholds": dict(thresholds),
                                    "findings": findings_at(probabilities, thresholds),
                                    "explained": order[:TOP_FINDINGS]}}

    def diagnosis_outputs(self, state: SessionState, opacity: float, image: np.ndarray | None = None
                          ) -> tuple[dict, list[tuple[str, str]], SessionState]:
        """(result, gallery, state): the table and the gallery share one ranking."""
        with profile.step("gallery"):
            return state["result"], self.gallery(state, opacity, image), state

    def gallery(self, state: SessionState, opacity: float, image: np.ndarray | None = None
                ) -> list[tuple[str, str]]:
        """The overlays of the mapped labels (the top-ranked), with their captions."""
        result, empty = state["result"], session.empty_maps(state)
        if image is None:  # a redraw: read the radiograph back once for every thumbnail
            with user_errors(result.get("file") or "image"):
                image = session.radiograph(state)
        return [(self.draw(state, label, opacity, image, side=session.THUMB_SIDE),
                 views.short_caption(result, label, label in empty))
                for label in result["explained"]]

    # ---------------------------------------------------------------------- redraws
    def draw(self, state: SessionState, label: str, opacity: float,
             image: np.ndarray | None = None, side: int | None = None) -> str:
        with user_errors(state["result"].get("file") or "image"):
            return session.draw(state, label, opacity, self.files, image, side)

    def result_file(self, state: SessionState) -> gr.DownloadButton:
        """UI only: the download button, with the session's last result as a JSON file."""
        return gr.DownloadButton(value=self.files.json(state["result"]), interactive=True)

    def compare(self, state: SessionState, label: str, opacity: float) -> tuple[str, str]:
        """(the radiograph, its heatmap for `label`) for a comparison slider, both at the
        result's size."""
        with user_errors(state["result"].get("file") or "image"):
            return session.original(state), self.draw(state, label, opacity)

    def remap(self, task: str, state: SessionState | None, *inputs: Any) -> tuple:
        """UI only: the maps of another method for the session's radiograph (the upload is
        gone: the session's PNG of it is what the model reads again). inputs: the API
        function's, after the file."""
        if not state:
            return gr.skip(), gr.skip(), state
        file_id = state["result"]["file"]
        with user_errors(file_id):
            session.radiograph(state)  # ResultExpired once it was removed or dropped unread
        if task == "screening":
            opacity, method = inputs
            return self._screen(self.predictor(task), state["original"], file_id, opacity, method)
        calibrated, threshold, opacity, method = inputs
        return self._diagnose(self.predictor(task), state["original"], file_id,
                              self.thresholds(calibrated, threshold), opacity, method)

    def report(self, task: str, state: SessionState | None) -> str:
        """The PDF report of the session's last result: its radiograph, maps, figures and
        model (diachestxr.report), drawn from what the session keeps (no model run)."""
        from ..report import write_report

        if not state:
            raise _error(views.UPLOAD_FIRST, "No result yet")
        result = state["result"]
        with user_errors(result.get("file") or "report"):
            out = self.files.path(f"diachestxr-{task}-report.pdf")
            write_report(out, result, session.radiograph(state), state["cams"],
                         self.predictor(task).info(task))
        return str(out)

    def failure(self, task: str, image: Any) -> str:
        """Why the last run of `task` on this upload failed: the message its run kept (the
        upload is not read a second time; it is gone by now)."""
        if task in self.errors:
            return views.unavailable(task, self.errors[task])
        if image is None:
            return views.UPLOAD_FIRST
        return self._failures.pop(str(image), views.INTERNAL_ERROR)
