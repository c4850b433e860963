"""The Batch tab: several radiographs at once give a table and a CSV, through the path the
CLI's `predict` takes (diachestxr.batch.predict_files). A file that cannot be analysed gets
a row with its reason; the others go on.

The table and the CSV name each file as it was uploaded (a user matching rows to files needs
that); the CSV lives with the other result files (removed after RESULT_TTL_S, and at exit)
and the event is not part of the public API, so no API result carries a file name. The
uploads themselves are deleted once the table is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import gradio as gr

from ..batch import predict_files, write_csv
from ..inference import Result
from . import session, views
from .service import Service, user_errors

MAX_BATCH_FILES = 32  # per run: a bounded wait for the next visitor in the queue
COLUMNS = ["file", "answer", "most probable", "radiograph check", "note"]


def batch_tab(service: Service) -> None:
    """Build the Batch tab inside the current gr.Tabs, with its event."""
    tasks = list(service.predictors)
    with gr.Tab("Batch", id="batch"):
        gr.Markdown(f"**Several radiographs at once** (up to {MAX_BATCH_FILES}): one row per "
                    "file, and the table as a CSV. " + views.DISCLAIMER, elem_classes=["small"])
        with gr.Row():
            with gr.Column(scale=4, min_width=280):
                files = gr.File(label="Chest X-rays (PNG, JPEG, DICOM)", file_count="multiple",
                                type="filepath", height=170, elem_id="batch-files")
                task = gr.Radio([(t.capitalize(), t) for t in tasks], value=tasks[0] if tasks else None,
                                label="Task", elem_id="batch-task")
                run = gr.Button("Analyse all", variant="primary", elem_id="batch-run",
                                interactive=bool(tasks))
            with gr.Column(scale=8, min_width=320):
                summary = gr.Markdown(elem_id="batch-summary")
                table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True,
                                     column_widths=["18%", "14%", "26%", "10%", "32%"],
                                     elem_id="batch-table")
                download = gr.DownloadButton("Download the table (CSV)", interactive=False,
                                             elem_id="batch-csv")

    def analyse(paths: list[str] | None, task: str, progress=gr.Progress()) -> tuple:
        """UI only: every file's answer, or its reason, as a table and a CSV."""
        return run_batch(service, paths, task, progress)

    run.click(analyse, inputs=[files, task], outputs=[summary, table, download],
              api_visibility="private", show_progress_on=[summary])


def run_batch(service: Service, paths: Sequence[Any] | None, task: str, progress=None) -> tuple:
    paths = [str(p) for p in paths or []]
    if not paths:
        raise gr.Error(views.UPLOAD_FIRST, title="No files", print_exception=False)
    try:
        if len(paths) > MAX_BATCH_FILES:
            raise gr.Error(f"{len(paths)} files: at most {MAX_BATCH_FILES} at once. Split them "
                           "into smaller batches, or use the command line (diachestxr predict "
                           "takes folders).", title="Too many files", print_exception=False)
        predictor = service.predictor(task)
        records, rows = [], []
        with user_errors("batch"):
            for done, (path, outcome) in enumerate(predict_files(
                    predictor, paths, task, explain="none")):
                if progress is not None:
                    progress((done + 1, len(paths)), desc="Analysing", unit="files")
                name = Path(path).name
                records.append({"file": name, "error": str(outcome)} if isinstance(outcome, Exception)
                               else {"file": name, **outcome.to_dict()})
                rows.append(table_row(records[-1], outcome))
        out = write_csv(service.files.path(f"diachestxr-batch-{task}.csv"), records, task)
    finally:
        for path in paths:
            if path not in service.shared_files:
                session.forget_upload(path)
        session.release_memory()
    failed = sum("error" in r for r in records)
    text = (f"**{len(records) - failed} of {len(records)} files analysed** ({task})"
            + (f"; {failed} could not be: see the note column." if failed else ".")
            + f"  \n<span class='dx-legend'>{views.DISCLAIMER}</span>")
    return text, rows, gr.DownloadButton(value=str(out), interactive=True)


def table_row(record: dict, outcome: Result | Exception) -> list[str]:
    """What the page's table shows of one file (the CSV holds every probability)."""
    if isinstance(outcome, Exception):
        return [record["file"], "not analysed", "", "", str(outcome)]
    scores = record.get("confidences") or record.get("probabilities")
    top = sorted(scores.items(), key=lambda kv: -kv[1])[:3]
    answer = (record["label"] if "label" in record
              else ", ".join(views.pretty(l) for l in record["findings"]) or "no finding")
    check = record.get("radiograph_check")
    return [record["file"], answer, ", ".join(f"{views.pretty(l)} {p:.0%}" for l, p in top),
            f"{check['score']:.2f}" if check else "", " ".join(record.get("warnings") or [])]

