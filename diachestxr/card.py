"""The model card: one Markdown renderer for the app's "About the model", the bundled
diachestxr/weights/<task>.md and the Hub's README.md. Input: a checkpoint's <task>.json
config (and optionally a `diachestxr evaluate` metrics dict)."""

from __future__ import annotations

import json
from pathlib import Path

from .config import CheckpointConfig
from .labels import DIAGNOSIS_SOURCE_GROUPS
from .registry import DEFAULT_HUB_REVISION, ModelSpec, get_spec

NOTICE = ("**Research and teaching use only. This is not a medical device**: it is not cleared "
          "or approved for diagnosis, triage or any clinical decision, and its outputs must not "
          "be used to care for patients.")

DATA = {
    "screening": (
        "`../shared/data/screening` (3 classes, fixed patient-wise train/val/test split): the "
        "Kermany et al. 2018 pediatric chest X-rays (Guangzhou; CC BY 4.0) for Normal and "
        "bacterial/viral Pneumonia; adult COVID-19 radiographs from the Hannover Medical School "
        "COVID-19 repository (CC BY 3.0), the ieee8023 covid-chestxray-dataset (per-image "
        "licenses), Figure1 and Actualmed (research use); and, in the train split only, 1,500 "
        "COVID-19 (mostly BIMCV, Valencia, and other public collections) and 1,500 adult Normal "
        "(RSNA/NIH) radiographs of the COVID-19 Radiography Database (`covid19_radiography`, "
        "224 px)."),
    "diagnosis": (
        "`../shared/data/diagnosis`: 3,331 frontal radiographs of 2,218 patients from NIH "
        "ChestX-ray14 (NIH Clinical Center; public, attribution requested), 14 labels from the "
        "official Data_Entry_2017_v2020 table (1 present, 0 absent, -1 unknown), split "
        "patient-wise 2,742 / 271 / 318 (train / val / test). Broad samples of all 14 labels: "
        "`nih_starter` (500, 512 px), `nih_extra` (94, 512 px) and `nih_lowres64` (779 of 261 "
        "patients, published at 64 x 64 px); selected as No Finding or Pneumonia, which makes "
        "Pneumonia far more common than in the full dataset: `nih_pneumonia_normal` (976, 512 px) "
        "and `nih_austin` (982, 300 px; 139 label cells unknown). Unknown cells are left out of "
        "the loss, the metrics and the thresholds. The same code trains on the full "
        "112,120-image download (Data_Entry_2017.csv)."),
}

LIMITATIONS = {
    "common": [
        "Trained on small public research datasets; not validated prospectively, on other "
        "hospitals' equipment, or against radiologists.",
        "Grad-CAM maps are coarse (13x13 for AlexNet, input size / 32 for DenseNet121: 6x6 at "
        "192 px; upsampled) and show where the evidence for a class lies in the image, not "
        "why; they are no proof that the model looks at pathology.",
        "Inputs are frontal chest radiographs; lateral views, other body parts, photographs of "
        "screens and post-processed images are out of distribution and still receive a prediction.",
    ],
    "screening": [
        "**Age confound.** In the screening data every COVID-19 image is an adult and nearly "
        "every Pneumonia and Normal image is a child (Kermany, ages 1-5). A model can score well "
        "on this split by recognising age or hospital instead of disease — the classic shortcut "
        "of COVID-19 X-ray classifiers (DeGrave et al., Nature Machine Intelligence 2021). Test "
        "scores on this split overstate real-world performance; a healthy adult radiograph may "
        "be called COVID-19. Look at the specificity on adult normal radiographs (under Metrics, "
        "where measured) and at the Grad-CAM maps.",
        "COVID-19 images come from several small public collections of varying quality "
        "(some are figures from publications).",
    ],
    "diagnosis": [
        "3,331 images (2,742 for training) are a small slice of ChestX-ray14. Only the broad-sample "
        "rows hold every label as NIH labels it; their test rows (56 at full resolution, 60 at "
        "64 px) have 1-10 positives per label, so per-label AUROC there is noisy, and the figures "
        "of the No Finding / Pneumonia rows (easy, and half the data) say little about the other "
        "13 labels. The groups are reported apart; read the broad ones.",
        "NIH labels were text-mined from radiology reports and are known to be noisy; one "
        "hospital (NIH Clinical Center), mostly PA/AP adult views.",
        "Thresholds are operating points chosen on the 271-image validation split (the lowest "
        "threshold with 95 % specificity per label, over the rows where the label is known); "
        "with few positives they move a lot.",
    ],
}


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _metrics_table(metrics: dict) -> list[str]:
    """Markdown for a metrics.json of `diachestxr evaluate` (see docs/metrics-json.md)."""
    lines = []
    if "per_class" in metrics:
        lines.append(f"n = {metrics.get('n')}, accuracy **{_fmt(metrics.get('accuracy'))}**, "
                     f"macro AUROC **{_fmt(metrics.get('macro_auroc'))}**")
        lines += ["", "| class | n positive | AUROC | sensitivity | specificity | PPV |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {m.get('n_pos')} | {_fmt(m.get('auroc'))} | {_fmt(m.get('sensitivity'))} "
                  f"| {_fmt(m.get('specificity'))} | {_fmt(m.get('ppv'))} |"
                  for name, m in metrics["per_class"].items()]
        if metrics.get("confusion_matrix"):
            classes = metrics.get("classes", list(metrics["per_class"]))
            lines += ["", "Confusion matrix (rows true, columns predicted):", "",
                      "| true \\ predicted | " + " | ".join(classes) + " |",
                      "|---" * (len(classes) + 1) + "|"]
            lines += [f"| {c} | " + " | ".join(str(v) for v in row) + " |"
                      for c, row in zip(classes, metrics["confusion_matrix"])]
    elif "per_label" in metrics:
        lines += _source_group_lines(metrics)
        lines.append(f"All rows: n = {metrics.get('n')}, mean AUROC **{_fmt(metrics.get('mean_auroc'))}** "
                     "(over labels with positives and negatives)")
        lines += ["", "| label | n positive | AUROC | threshold | sensitivity | specificity |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {m.get('n_pos')} | {_fmt(m.get('auroc'))} | {_fmt(m.get('threshold'))} "
                  f"| {_fmt(m.get('sensitivity'))} | {_fmt(m.get('specificity'))} |"
                  for name, m in metrics["per_label"].items()]
        if (nf := metrics.get("no_finding")) and nf.get("n"):
            lines += ["", f"The {nf['n']} radiographs without any finding get a median of "
                          f"{_fmt(nf['findings_median'], 1)} findings (mean "
                          f"{_fmt(nf['findings_mean'], 2)}) at these thresholds."]
        if (maps := metrics.get("maps")) and maps.get("true_findings"):
            lines += ["", f"Grad-CAM maps of the true findings: {_fmt(maps['non_empty_share'])} of "
                          f"{maps['true_findings']} are non-empty."]
    else:
        lines += ["```json", json.dumps(metrics, indent=2), "```"]
    if adult := metrics.get("adult"):
        lines += ["", f"Adults only ({adult['n']} radiographs: {adult.get('data', '')}): COVID-19 vs "
                      f"non-COVID-19 AUROC **{_fmt(adult['covid19_vs_non_covid19_auroc'])}**, "
                      f"COVID-19 sensitivity {_fmt(adult['covid19_sensitivity'])}, non-COVID-19 "
                      f"called COVID-19 {_fmt(adult['non_covid19_called_covid19'])}; adult Normal "
                      f"(n = {adult['normal']['n']}) called Normal {_fmt(adult['normal']['called_normal'])}; "
                      f"adult Pneumonia (n = {adult['pneumonia']['n']}) called Normal "
                      f"{_fmt(adult['pneumonia']['called_normal'])}, called Pneumonia "
                      f"{_fmt(adult['pneumonia']['called_pneumonia'])}."]
        if (maps := adult.get("maps")) and maps.get("n"):
            lines += ["", f"Grad-CAM of the predicted class on these adults: a median "
                          f"{_fmt(maps['central_box_share_median'])} of the map's mass lies in the "
                          f"central box (middle 80 % of width and height; an even map scores "
                          f"{_fmt(maps['uniform_map_share'], 2)})."]
    score = "mean_auroc" if "per_label" in metrics else "macro_auroc"
    if (low := metrics.get("low_resolution")) and low.get(score) is not None:
        lines += ["", f"On copies shrunk to {low['side']} px (long side): "
                      f"{score.replace('_', ' ')} {_fmt(low[score])}."]
    if metrics.get("by_source"):
        lines += ["", "By source: " + "; ".join(
            f"`{source}` n = {m['n']}, {score.replace('_', ' ')} {_fmt(m.get(score))}"
            + (f", accuracy {_fmt(m['accuracy'])}" if "accuracy" in m else "")
            for source, m in metrics["by_source"].items()) + "."]
    return lines


GROUP_NAMES = {"broad": "broad sample, full resolution", "broad_64px": "broad sample, 64 px",
               "no_finding_pneumonia": "selected No Finding / Pneumonia"}


def _group_name(group: str) -> str:
    sources = ", ".join(f"`{s}`" for s in DIAGNOSIS_SOURCE_GROUPS.get(group, ()))
    return f"{GROUP_NAMES.get(group, group)} ({sources})" if sources else group


def _source_group_lines(metrics: dict) -> list[str]:
    """The diagnosis figures per group of sources, broad samples first: they predict how the
    model reads a stranger's film; the No Finding / Pneumonia rows are the easy ones."""
    groups = metrics.get("by_source_group") or {}
    if not groups:
        return []
    labels = metrics.get("labels") or list(metrics["per_label"])
    names = list(groups)
    side = (metrics.get("low_resolution") or {}).get("side", "low-resolution")
    lines = [f"| rows | n | mean AUROC | the same rows shrunk to {side} px | findings on No "
             "Finding rows (median) |", "|---|---|---|---|---|"]
    lines += [f"| {_group_name(g)} | {m['n']} | **{_fmt(m.get('mean_auroc'))}** | "
              f"{_fmt(m.get('low_resolution_mean_auroc'))} | "
              f"{_fmt((m.get('no_finding') or {}).get('findings_median'), 1)} |"
              for g, m in groups.items()]
    lines += ["", "AUROC per label and group (n positive in brackets; n/a: no positive or no "
                  "negative there):", "", "| label | " + " | ".join(names) + " |",
              "|---" * (len(names) + 1) + "|"]
    for label in labels:
        cells = [(groups[g].get("per_label") or {}).get(label, {}) for g in names]
        lines.append(f"| {label} | " + " | ".join(
            f"{_fmt(c.get('auroc'))} ({c.get('n_pos', 0)})" for c in cells) + " |")
    return lines + [""]


def _held_out_lines(reports: list[dict] | None) -> list[str]:
    """Screening: how runs of this recipe did on a hospital they never saw (reports of
    training/holdout.py) -- the figure that predicts a stranger's film, so it comes first."""
    if not reports:
        return []
    lines = ["**Hospitals it never saw** (leave-one-hospital-out: each run trained without the "
             "source; its COVID-19 radiographs ranked against adult non-COVID radiographs no run "
             "trained on, the source's own and the test split's; operating point fitted on the "
             "other sources' validation adults):", "",
             "| held-out source | run | n | COVID-19 AUROC | COVID-19 sensitivity | "
             "non-COVID called COVID-19 | adult Normal called Normal |", "|---|---|---|---|---|---|---|"]
    for report in reports:
        for source, entry in report["by_source"].items():
            m = entry["against_unseen_adults"]
            lines.append(f"| `{source}` | {report.get('name', Path(report['weights']).name)} | "
                         f"{entry['n']} | **{_fmt(m['covid19_vs_non_covid19_auroc'])}** | "
                         f"{_fmt(m['covid19_sensitivity'])} | {_fmt(m['non_covid19_called_covid19'])} | "
                         f"{_fmt(m['normal']['called_normal'])} |")
    return lines + [""]


def headline_metrics(metrics: dict | None) -> dict[str, float]:
    """The few numbers a model card leads with, from a `diachestxr evaluate` metrics dict."""
    if not metrics:
        return {}
    if "per_class" in metrics:
        return {"test images": metrics["n"], "accuracy": metrics["accuracy"],
                "macro AUROC": metrics["macro_auroc"],
                **{f"{c} sensitivity": m["sensitivity"] for c, m in metrics["per_class"].items()}}
    # Diagnosis leads with the broad-sample rows: they hold all 14 labels as NIH labels them,
    # where the No Finding / Pneumonia rows are easy (see labels.DIAGNOSIS_SOURCE_GROUPS).
    if broad := (metrics.get("by_source_group") or {}).get("broad"):
        return {"broad-sample test images": broad["n"], "mean AUROC": headline_auroc(metrics),
                "all test images": metrics["n"], "mean AUROC, all": metrics["mean_auroc"]}
    return {"test images": metrics["n"], "mean AUROC": headline_auroc(metrics)}


def held_out_aurocs(reports: list[dict] | None) -> dict[str, float]:
    """Screening: {held-out source: COVID-19 AUROC} of the runs of the checkpoint's recipe
    that never saw that source (training/holdout.py reports, stored by training.bundle):
    the figure that predicts a stranger's film."""
    return {source: entry["against_unseen_adults"]["covid19_vs_non_covid19_auroc"]
            for report in reports or [] for source, entry in report["by_source"].items()}


def headline_auroc(metrics: dict | None) -> float | None:
    """The one AUROC a checkpoint's test split is judged by, from the structured metrics:
    screening's macro AUROC; diagnosis's mean AUROC on the broad-sample rows where reported
    (the rows that hold all 14 labels as NIH labels them), else on all rows."""
    if not metrics:
        return None
    if "per_class" in metrics:
        return metrics.get("macro_auroc")
    broad = (metrics.get("by_source_group") or {}).get("broad")
    return (broad or metrics).get("mean_auroc")


def stranger_auroc(config: CheckpointConfig) -> float | None:
    """The one AUROC that predicts how the checkpoint reads a stranger's film (what the
    app's weak-model notice triggers on): screening, the worst hospital its recipe never saw
    (else adults only, else the test split); diagnosis, the broad-sample rows."""
    metrics = config.test_metrics or {}
    if held := held_out_aurocs(config.leave_one_hospital_out):
        return min(held.values())
    if adult := metrics.get("adult"):
        return adult.get("covid19_vs_non_covid19_auroc")
    return headline_auroc(metrics)


def outlook(config: CheckpointConfig) -> list[str]:
    """How far to trust an answer of this checkpoint, in words a visitor reads: first the
    figure that predicts a stranger's film (screening: hospitals its recipe never saw, then
    adults only; diagnosis: the broad-sample NIH rows), the pooled test figure last. The one
    rule for the app's header and result notes, the report and the CLI's `info`."""
    metrics = config.test_metrics or {}
    lines = []
    if "per_class" in metrics or config.leave_one_hospital_out:
        held = [entry["against_unseen_adults"] for report in config.leave_one_hospital_out or []
                for entry in report["by_source"].values()]
        if held:
            aurocs = [m["covid19_vs_non_covid19_auroc"] for m in held]
            found = [m["covid19_sensitivity"] for m in held]
            lines.append(
                f"Trained without one of {len(held)} hospitals, its recipe ranked that hospital's "
                f"COVID-19 radiographs above other adults' with an AUROC of "
                f"{min(aurocs):.2f}-{max(aurocs):.2f}, and its answer named "
                f"{min(found):.0%}-{max(found):.0%} of their COVID-19 cases.")
        if adult := metrics.get("adult"):
            lines.append(
                f"On adults of its own test hospitals: COVID-19 AUROC "
                f"{adult['covid19_vs_non_covid19_auroc']:.2f}; "
                f"{adult['normal']['called_normal']:.0%} of normal adult films called Normal "
                f"and {adult['pneumonia']['called_normal']:.0%} of adult pneumonias missed as "
                "Normal (nearly every training Normal and Pneumonia film is a child's).")
        if "accuracy" in metrics:
            lines.append(f"Its pooled test split (mostly children, training hospitals): accuracy "
                         f"{metrics['accuracy']:.2f}, macro AUROC {metrics['macro_auroc']:.2f}, a "
                         "flattering figure.")
        return lines
    groups = metrics.get("by_source_group") or {}
    if broad := groups.get("broad"):
        low = groups.get("broad_64px")
        lines.append(
            f"On NIH patients it never saw, with any of the 14 findings, it ranks a film with "
            f"a finding above one without it with a mean AUROC of {broad['mean_auroc']:.2f} "
            f"({broad['n']} full-resolution films"
            + (f"; {low['mean_auroc']:.2f} on {low['n']} films at 64 px" if low else "")
            + "), where 0.5 is chance: read its findings as weak hints.")
    if metrics.get("mean_auroc") is not None:
        lines.append(f"Its pooled test split ({metrics['n']} films, mostly the easy No Finding "
                     f"vs Pneumonia rows): mean AUROC {metrics['mean_auroc']:.2f}.")
    return lines


def _calibration_lines(config: CheckpointConfig) -> list[str]:
    """The "Calibration" section (training.calibrate's record in the config): T, the
    expected calibration error before and after, and the validation bins as a table (the
    card is shown as Markdown in the app, where an image would not render)."""
    cal = config.calibration
    if not cal:
        return []
    multilabel = config.multilabel
    t = config.temperature
    val = cal.get("val") or {}
    lines = ["## Calibration", "",
             f"Probabilities are temperature-scaled: {'sigmoid' if multilabel else 'softmax'}"
             f"(logits / T) with **T = {t:.3f}**, the T that minimises the negative "
             f"log-likelihood on the validation split ({val.get('n_images')} images"
             + (", known label cells only" if multilabel else "") + "). A positive T keeps "
             + ("each label's ranking (so every AUROC)" if multilabel else "the arg-max")
             + " and changes how much a probability claims: T > 1 softens an overconfident "
               "model, T < 1 sharpens an underconfident one.", ""]
    if multilabel and config.thresholds:
        lines += ["The per-label thresholds moved with T (logit(t') = logit(t) / T), so the "
                  "same radiographs are called as before.", ""]
    elif config.covid19_threshold is not None:
        lines += ["The COVID-19 operating point was re-chosen by the same rule on the "
                  "calibrated validation probabilities.", ""]
    lines += [f"Expected calibration error ({cal.get('bins', 15)} equal-width bins; "
              f"{cal.get('measured_on', '')}):", "",
              "| split | ECE, T = 1 | ECE, T = " + f"{t:.3f} | NLL, T = 1 | NLL, T = {t:.3f} |",
              "|---|---|---|---|---|"]
    for split, name in (("val", "validation (fitted here)"), ("test", "test")):
        if r := cal.get(split):
            lines.append(f"| {name} | {_fmt(r['before']['ece'])} | **{_fmt(r['after']['ece'])}** "
                         f"| {_fmt(r['before']['nll'])} | {_fmt(r['after']['nll'])} |")
    if val.get("before") and val.get("after"):
        lines += ["", "Validation reliability per bin ("
                  + ("label cells" if multilabel else "images") + ", mean probability -> observed "
                      "frequency of the " + ("label" if multilabel else "arg-max class "
                                             "being right") + "; empty bins left out):", "",
                  f"| bin | T = 1 | T = {t:.3f} |", "|---|---|---|"]
        cell = lambda b: (f"{b['n']}, {_fmt(b['confidence'])} -> {_fmt(b['accuracy'])}"  # noqa: E731
                          if b["n"] else "")
        for before, after in zip(val["before"]["bins"], val["after"]["bins"]):
            if before["n"] or after["n"]:
                lines.append(f"| {before['lower']:.2f}-{before['upper']:.2f} | {cell(before)} "
                             f"| {cell(after)} |")
    if multilabel and (rates := config.prevalence):
        lines += ["", "Each label's usual rate (positives among the known training-split cells; "
                      "a probability reads as a multiple of it): "
                  + ", ".join(f"{label} {_fmt(v)}" for label, v in rates.items()) + "."]
    return lines + [""]


def _as_list(value) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def demote_headings(markdown: str, levels: int = 1) -> str:
    """Every Markdown heading `levels` levels down (code fences left alone), to nest a card
    under another page's headings (the Hub repo's README, the app's "About the model")."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" * levels + line if line.startswith("#") and not fenced else line)
    return "\n".join(lines)


def model_card(config: CheckpointConfig, eval_metrics: dict | None = None,
               repo_id: str | None = None, revision: str | None = None) -> str:
    """A standalone Markdown model card for one checkpoint, from its <task>.json config and
    optionally a `diachestxr evaluate` metrics.json. Used for the Hub and for
    diachestxr/weights/<task>.md."""
    spec = get_spec(config.task)
    out = [f"# DiaChestXR {config.task} model ({config.arch})", "", NOTICE, ""]
    out += _model_lines(config, spec)
    out += _training_lines(config)
    out += _metrics_lines(config, spec, eval_metrics)
    out += _calibration_lines(config)
    out += ["## Limitations", ""]
    out += [f"- {text}" for text in LIMITATIONS[config.task] + LIMITATIONS["common"]
            + _as_list(config.limitations)]
    out.append("")
    return "\n".join(out + _use_lines(spec, repo_id, revision))


def _model_lines(config: CheckpointConfig, spec: ModelSpec) -> list[str]:
    out = ["## Model", ""]
    if spec.multilabel:
        out.append(f"- Multi-label NIH ChestX-ray14 diagnosis: {len(spec.labels)} independent "
                   "sigmoid outputs (" + ", ".join(spec.labels) + ").")
    else:
        out.append("- Single-label screening, softmax over " + ", ".join(spec.labels) + ".")
    init = (config.training.get("config") or {}).get("init")
    return out + [
        f"- Architecture: torchvision {config.arch} convolutional features -> "
        "global average pool -> dropout -> linear head (see `diachestxr/models.py`).",
        f"- Input: grayscale radiograph squashed to {config.input_size}"
        f" px, replicated to 3 channels, normalised with mean {list(config.mean)} and std "
        f"{list(config.std)}.",
        f"- Files: `{spec.filename}` (safetensors, fp16 storage) and `{spec.config_filename}` "
        "(labels, preprocessing, thresholds, training record).",
        f"- Initialisation: `{init or 'not recorded'}`"
        + (" (random initialisation, no ImageNet pre-training)" if init == "scratch" else "")
        + ".", ""]


def _training_lines(config: CheckpointConfig) -> list[str]:
    """The "Training data" and "Training" sections: what it saw, and the run's record."""
    training = config.training
    tcfg = training.get("config") or {}
    out = ["## Training data", ""]
    if isinstance(config.training_data, dict):
        out += [f"- {k}: {v}" for k, v in config.training_data.items()]
    elif config.training_data:
        out.append(str(config.training_data))
    else:
        out.append(DATA[config.task])
    if tcfg.get("extra_adults"):
        out.append(f"\nExtra adult radiographs from `{tcfg['extra_adults']}` (NIH ChestX-ray14, "
                   "train/val rows: no finding as Normal, Pneumonia as Pneumonia, any other "
                   "finding as the partial label 'not COVID-19').")
    out += ["", "## Training", ""]
    if soup_of := training.get("soup_of"):
        out += [f"A weight average (`python -m training.soup`) of {len(soup_of)} runs fine-tuned "
                "from the same checkpoint: " + ", ".join(f"`{run}`" for run in soup_of)
                + ". The record below is the first run's; each run's best validation epoch:", ""]
        out += [f"- `{run}`: " + ", ".join(f"{k} {_fmt(v)}" for k, v in (scores or {}).items()
                                          if k not in ("lr", "elapsed_s"))
                for run, scores in zip(soup_of, training.get("soup_validation") or [])] + [""]
    if training.get("command"):
        out += ["Exact command:", "", "```bash", training["command"], "```", ""]
    else:
        out += ["The training command was not recorded in the config.", ""]
    wall = training.get("wall_time_s")
    facts = [("epochs run", training.get("epochs_run")), ("best epoch", training.get("best_epoch")),
             ("wall time", None if wall is None else
              f"{wall / 60:.1f} min" if wall >= 60 else f"{wall:.0f} s")]
    facts += [(k, tcfg.get(k)) for k in ("epochs", "batch_size", "lr", "weight_decay",
                                         "input_size", "samples_per_epoch", "seed") if tcfg.get(k)]
    out += [f"- {k}: {v}" for k, v in facts if v is not None]
    out += [f"- {note}" for note in _as_list(tcfg.get("notes"))]
    return out + [""]


def _metrics_lines(config: CheckpointConfig, spec: ModelSpec, eval_metrics: dict | None
                   ) -> list[str]:
    """The "Metrics" section: hospitals never seen first, then validation and test, then
    the decision thresholds."""
    out = ["## Metrics", ""]
    out += _held_out_lines(config.leave_one_hospital_out)
    if config.validation:
        out += ["Validation split, best epoch (the checkpoint kept): "
                + ", ".join(f"{k} {_fmt(v)}" for k, v in config.validation.items()
                            if k not in ("lr", "elapsed_s")), ""]
    if config.test_metrics:
        out += ["Test split (recorded in the config):", ""]
        out += _metrics_table(config.test_metrics) + [""]
    if eval_metrics:
        out += ["`python -m diachestxr evaluate` output shipped with this run:", ""]
        out += _metrics_table(eval_metrics) + [""]
    if not (config.validation or config.test_metrics or eval_metrics):
        out += ["No metrics were recorded for this checkpoint.", ""]
    if spec.multilabel and config.thresholds:
        out += ["Per-label decision thresholds (calibrated on the validation split, used by "
                "`Predictor.diagnose` by default):", "",
                "| " + " | ".join(config.thresholds) + " |",
                "|---" * len(config.thresholds) + "|",
                "| " + " | ".join(_fmt(v) for v in config.thresholds.values()) + " |", ""]
    if (threshold := config.covid19_threshold) is not None:
        point = config.operating_point
        out += [f"COVID-19 operating point: called from a probability of {_fmt(threshold)} "
                f"(chosen on the validation split so that at most "
                f"{1 - point.get('adult_specificity', 0.95):.0%} of adult non-COVID radiographs "
                "are called COVID-19); below it, the more probable of the other classes.", ""]
    return out


def _use_lines(spec: ModelSpec, repo_id: str | None, revision: str | None) -> list[str]:
    out = ["## Use", "", "```python", "from diachestxr import Predictor",
           "p = Predictor()  # DIACHESTXR_HUB_REPO@DIACHESTXR_HUB_REVISION, else the bundled weights",
           ("print(p.diagnose('xray.png').findings)" if spec.multilabel
            else "print(p.screen('xray.png').label)"), "```", ""]
    if repo_id:
        out += ["Point the DiaChestXR app or CLI at these weights with", "", "```bash",
                f"export DIACHESTXR_HUB_REPO={repo_id}",
                f"export DIACHESTXR_HUB_REVISION={revision or DEFAULT_HUB_REVISION}", "```", ""]
    return out


