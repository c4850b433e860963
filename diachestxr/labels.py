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

# Screening data sources whose radiographs are children's (Kermany: ages 1-5); every other
# source is adult. The screening data confounds age with disease, so metrics on adults alone
# are reported beside the whole test split.
PEDIATRIC_SOURCES: tuple[str, ...] = ("kermany224",)

NOT_COVID = -1  # screening target of an image known not to be COVID-19, class otherwise unknown


def screening_target_of_nih(findings: Sequence[float]) -> int:
    """An NIH ChestX-ray14 row (14 0/1 values) as a screening target: no finding -> Normal,
    Pneumonia -> Pneumonia, any other finding -> NOT_COVID (a partial label). NIH images
    predate COVID-19, so none is COVID-19."""
    if not any(v > 0.5 for v in findings):
        return SCREENING_CLASSES.index("Normal")
    if findings[NIH_LABELS.index("Pneumonia")] > 0.5:
        return SCREENING_CLASSES.index("Pneumonia")
    return NOT_COVID
