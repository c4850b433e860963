"""Class names of both tasks, defined once for the whole project."""

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
