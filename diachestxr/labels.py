"""Class names of both tasks, defined once for the whole project."""

from typing import Sequence

SCREENING_CLASSES: tuple[str, ...] = ("COVID-19", "Pneumonia", "Normal")

# NIH ChestX-ray14, in the column order of Data_Entry_2017 and ../shared/data/diagnosis/labels.csv.
NIH_LABELS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)

NO_FINDING = "No Finding"  # NIH's name for an all-zero row

# A diagnosis label cell that is neither present (1) nor absent (0): -1 or empty in a
# labels.csv (CheXpert's "uncertain" too). Such a cell is left out of that label's loss,
# metrics and operating point; it is never read as a negative.
UNKNOWN = -1.0


def known(targets):
    """True where a diagnosis target is known (0 or 1), False where it is UNKNOWN."""
    return targets >= 0


# Groups of the diagnosis data's `source` column that are reported apart (metrics.json
# "by_source_group", the model card, docs/models.md). The broad samples hold every label as NIH
# labels it; the No Finding / Pneumonia sources were selected for those two and make them
# easy. The model is chosen on the broad rows (training.train.selection_score).
DIAGNOSIS_SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    "broad": ("nih_starter", "nih_extra"),
    "broad_64px": ("nih_lowres64",),
    "no_finding_pneumonia": ("nih_pneumonia_normal", "nih_austin"),
}

# Screening data sources whose radiographs are children's (Kermany: ages 1-5); every other
# source is adult. The screening data confounds age with disease, so metrics on adults alone
# are reported beside the whole test split.
PEDIATRIC_SOURCES: tuple[str, ...] = ("kermany224",)

NOT_COVID = -1  # screening target of an image known not to be COVID-19, class otherwise unknown


def screening_target_of_nih(findings: Sequence[float]) -> int:
    """An NIH ChestX-ray14 row (14 values: 1, 0 or UNKNOWN) as a screening target: no
    finding -> Normal, Pneumonia -> Pneumonia, any other finding -> NOT_COVID (a partial
    label). A row with unknown cells and no finding is not known to be normal: NOT_COVID.
    NIH images predate COVID-19, so none is COVID-19."""
    if findings[NIH_LABELS.index("Pneumonia")] > 0.5:
        return SCREENING_CLASSES.index("Pneumonia")
    if all(v == 0 for v in findings):
        return SCREENING_CLASSES.index("Normal")
    return NOT_COVID
