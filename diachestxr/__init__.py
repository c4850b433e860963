"""DiaChestXR: chest X-ray screening (COVID-19 / Pneumonia / Normal) and NIH ChestX-ray14
diagnosis with Grad-CAM explanations. A research and teaching tool, not a medical device."""

from .inference import DiagnosisResult, Explanation, Predictor, ScreeningResult
from .io import ImageReadError, read_xray
from .labels import NIH_LABELS, SCREENING_CLASSES
from .registry import SPECS, TASKS, ModelSpec, get_spec
from .weights import WeightsError, load_model

__version__ = "0.1.0"

__all__ = ["Predictor", "ScreeningResult", "DiagnosisResult", "Explanation", "read_xray",
           "ImageReadError", "WeightsError", "load_model", "SCREENING_CLASSES", "NIH_LABELS",
           "SPECS", "TASKS", "ModelSpec", "get_spec", "__version__"]
