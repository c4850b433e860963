"""Many files at once, one result or one reason per file: the path the CLI's `predict` and
the web app's Batch tab share (both through `Predictor.iter_predict`), and the CSV they write.

An unreadable file, a file the radiograph check refuses, or one that breaks its batch
becomes that file's error; the others go on.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Iterator, Sequence

from .inference import Predictor, Result
from .io import ImageReadError, read_xray
from .registry import BATCH_SIZE, get_spec

log = logging.getLogger(__name__)


def predict_files(predictor: Predictor, paths: Sequence[str], task: str, *,
                  names: Sequence[str] | None = None, batch_size: int = BATCH_SIZE,
                  **options) -> Iterator[tuple[str, Result | ImageReadError]]:
    """(path, result or the reason it has none) for each file, in order, `batch_size`
    files at a time. names: what messages call each file (default: its file name).
    options: `Predictor.iter_predict`'s (explain, thresholds, method, ...). The radiograph
    check, where the predictor has it on, refuses nothing inside a batch: a refused image
    becomes its file's error, and the batch is not redone."""
    names = list(names) if names is not None else [Path(p).name for p in paths]
    for start in range(0, len(paths), batch_size):
        chunk = list(range(start, min(start + batch_size, len(paths))))
        outcome: dict[int, Result | ImageReadError] = {}
        images = {}
        for i in chunk:  # read first: one bad file is reported, the others go on
            try:
                images[i] = read_xray(paths[i], names[i])
            except Exception as err:  # noqa: BLE001 -- whatever a decoder raises, per file
                outcome[i] = _file_error(names[i], err)
        readable = [i for i in chunk if i in images]
        try:
            outcome.update(zip(readable, predictor.iter_predict(
                [images[i] for i in readable], task, names=[names[i] for i in readable],
                batch_size=batch_size, refuse=False, **options)))
        except Exception:  # noqa: BLE001 -- one image broke the batch: find it, keep the rest
            for i in readable:
                try:
                    outcome[i] = predictor.predict([images[i]], task, names=[names[i]],
                                                   refuse=False, **options)[0]
                except Exception as err:  # noqa: BLE001
                    outcome[i] = _file_error(names[i], err)
        for i in chunk:
            result = outcome[i]
            if not isinstance(result, Exception) and result.gate and not result.gate.accepted:
                result = ImageReadError(result.gate.message(names[i]))
            yield paths[i], result


def _file_error(name: str, err: Exception) -> ImageReadError:
    """Our reader's and the gate's message as it is; anything else named with the file."""
    if isinstance(err, ImageReadError):
        return err
    log.debug("reading %s failed", name, exc_info=True)
    return ImageReadError(f"{name}: cannot read this file ({type(err).__name__}: {err})")


def csv_columns(task: str) -> list[str]:
    """The CSV's columns: the file, the call, a column per class or label, the radiograph
    check's score, the heatmap file (CLI --cam-dir) and the error."""
    return ["file", "label" if task == "screening" else "findings", *get_spec(task).labels,
            "radiograph_score", "cam", "error"]


def csv_row(record: dict) -> dict:
    """One record (a result's dict with "file", or {"file", "error"}) as a CSV row."""
    scores = record.get("confidences") or record.get("probabilities") or {}
    return {"file": record["file"], "label": record.get("label", ""),
            "findings": "|".join(record.get("findings", [])),
            **{label: f"{p:.6f}" for label, p in scores.items()},
            "radiograph_score": record.get("radiograph_check", {}).get("score", ""),
            "cam": record.get("cam", {}).get("file", ""), "error": record.get("error", "")}


def write_csv(out: str | Path, records: Sequence[dict], task: str) -> Path:
    """The records as a CSV file, one row per file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=csv_columns(task), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(csv_row(r) for r in records)
    return out
