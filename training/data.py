"""Labelled chest X-ray datasets: our labels.csv layout and NIH's official Data_Entry_2017.csv.

Images are decoded once with the project's reader, resized, and kept in memory as uint8
(and in an .npy cache file), so an epoch on 2 CPU cores is spent on the model, not on JPEG
decoding.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from diachestxr.evaluate import read_csv_rows, read_labelled_csv
from diachestxr.io import read_xray
from diachestxr.labels import (NIH_LABELS, NO_FINDING, NOT_COVID, PEDIATRIC_SOURCES,
                               screening_target_of_nih)
from diachestxr.transforms import resize_gray

log = logging.getLogger(__name__)


@dataclass
class Record:
    path: Path
    target: np.ndarray  # screening: class index (0-d); diagnosis: 14 floats in {0, 1}
    group: str = ""  # sampling stratum, e.g. "adult"/"pediatric"
    meta: dict = field(default_factory=dict)


def read_labels_csv(csv_path: str | Path, task: str, split: str | None = None) -> list[Record]:
    """Rows of a labels.csv (paths relative to its folder); `split` filters the split column.
    Parsing and validation are the evaluate command's, so both read a CSV the same way."""
    paths, targets = read_labelled_csv(csv_path, task, split)
    rows = read_csv_rows(csv_path, split)
    return [Record(p, np.asarray(t), _age_group(task, r), r) for p, t, r in zip(paths, targets, rows)]


def _age_group(task: str, row: dict) -> str:
    return "pediatric" if task == "screening" and row.get("source") in PEDIATRIC_SOURCES else "adult"


def nih_rows_as_screening(csv_path: str | Path, split: str | None = None) -> list[Record]:
    """Adult NIH radiographs for the screening task: no finding -> Normal, Pneumonia ->
    Pneumonia, any other finding -> NOT_COVID (a partial label: not COVID-19, nothing more).

    They come from another hospital and from adults, which counters the screening data's
    "adult means COVID-19" shortcut; NIH images predate COVID-19, so none is COVID-19.
    """
    return [Record(rec.path, np.array(screening_target_of_nih(rec.target)), "adult", rec.meta)
            for rec in read_labels_csv(csv_path, "diagnosis", split)]


def task_records(data: str | Path, task: str, split: str | None = None) -> list[Record]:
    """A task's radiographs under the data root (`split`: one split's). Screening's include
    the diagnosis data's NIH radiographs as adults (nih_rows_as_screening), the way its
    operating point, robustness and hold-out reports measure it."""
    records = read_labels_csv(Path(data) / task / "labels.csv", task, split)
    if task == "screening":
        records += nih_rows_as_screening(Path(data) / "diagnosis" / "labels.csv", split)
    return records


def evaluate_adults(task: str, data: str | Path) -> dict:
    """evaluate_csv's keyword that adds screening's adult block (the NIH radiographs as
    adults of another hospital); nothing for diagnosis."""
    return {"extra_adults": Path(data) / "diagnosis" / "labels.csv"} if task == "screening" else {}


def read_nih_table(data_entry_csv: str | Path, image_root: str | Path,
                   list_file: str | Path | None = None) -> list[Record]:
    """The official NIH download: Data_Entry_2017*.csv ("Finding Labels" joined by "|"),
    images anywhere under image_root (images_001/images/..., or one flat folder), and
    optionally train_val_list.txt / test_list.txt to select rows."""
    image_root = Path(image_root)
    by_name = {p.name: p for p in image_root.rglob("*.png")}
    keep = set(Path(list_file).read_text().split()) if list_file else None
    records = []
    for r in csv.DictReader(Path(data_entry_csv).open(newline="")):
        name = r["Image Index"]
        if keep is not None and name not in keep:
            continue
        if name not in by_name:
            continue
        findings = {f.strip() for f in r["Finding Labels"].split("|")} - {NO_FINDING}
        unknown = findings - set(NIH_LABELS)
        if unknown:
            raise ValueError(f"{data_entry_csv}: unknown finding(s) {sorted(unknown)} for {name}")
        target = np.array([float(l in findings) for l in NIH_LABELS], np.float32)
        records.append(Record(by_name[name], target, "adult", r))
    if not records:
        raise ValueError(f"no images of {data_entry_csv} found under {image_root}")
    return records


def load_images(records: list[Record], size: int, cache_dir: str | Path | None = None) -> np.ndarray:
    """Decode + resize every record once -> (N, size, size) uint8, cached as .npy."""
    key = hashlib.sha1(("\n".join(str(r.path.resolve()) for r in records) + f"|{size}").encode())
    cache = Path(cache_dir) / f"images-{size}-{key.hexdigest()[:16]}.npy" if cache_dir else None
    if cache is not None and cache.is_file():
        return np.load(cache)
    out = np.empty((len(records), size, size), np.uint8)
    for i, rec in enumerate(tqdm(records, desc=f"decoding {len(records)} images", unit="img")):
        out[i] = resize_gray(read_xray(rec.path), size)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, out)
    return out


class XRayDataset(Dataset):
    def __init__(self, images: np.ndarray, records: list[Record], transform) -> None:
        self.images, self.targets, self.transform = images, [r.target for r in records], transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = torch.from_numpy(self.images[i]).unsqueeze(0)
        return self.transform(img), torch.as_tensor(self.targets[i])


def stratified_weights(records: list[Record], n_classes: int,
                       balance_sources: bool = False) -> np.ndarray:
    """Per-sample weights that give every class (and NOT_COVID) an equal share of each epoch
    and, within a class, an equal share to each group (adult / pediatric): so the ~90 adult
    Normal and Pneumonia radiographs weigh as much as the ~4000 pediatric ones.

    balance_sources: within a (class, group), each hospital's share grows as the square root
    of its count rather than the count, so adult Normal and Pneumonia are not almost all NIH
    (the shortcut "looks like NIH, so not COVID-19") while 13 images of a small source are
    not repeated as often as 460 of a large one."""
    strata = [(int(r.target), r.group) for r in records]
    counts = Counter(strata)
    classes = [NOT_COVID, *range(n_classes)]
    groups_per_class = {c: sum(1 for (k, _) in counts if k == c) for c in classes}
    present = [c for c in classes if groups_per_class[c]]
    weights = np.array([1.0 / len(present) / groups_per_class[c] / counts[(c, g)] for c, g in strata])
    if balance_sources:
        hospitals = [hospital(r) for r in records]
        per_source = Counter(zip(strata, hospitals))
        root_sum = Counter()
        for (stratum, _), n in per_source.items():
            root_sum[stratum] += math.sqrt(n)
        weights *= np.array([counts[s] * math.sqrt(per_source[(s, h)]) / root_sum[s] / per_source[(s, h)]
                             for s, h in zip(strata, hospitals)])
    return weights


def from_sources(record: Record, sources) -> bool:
    """Whether a record comes from one of `sources`: a labels.csv `source`, or a hospital
    (`hospital`: "nih" for every NIH subset). The rule --holdout and its reports share."""
    return hospital(record) in sources or record.meta.get("source") in sources


def hospital(record: Record) -> str:
    """The source hospital of a record: NIH's two subsets are one hospital."""
    source = str(record.meta.get("source", ""))
    return "nih" if source.startswith("nih") else source
