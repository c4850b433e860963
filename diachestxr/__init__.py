"""DiaChestXR: chest X-ray screening (COVID-19 / Pneumonia / Normal) and NIH ChestX-ray14
diagnosis with Grad-CAM explanations. A research and teaching tool, not a medical device.

The public API is imported on first use (PEP 562), so `import diachestxr` and the CLI's
`--help` do not pay for torch and pytorch-grad-cam.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.9.0"

_EXPORTS = {
    "Predictor": "inference", "ScreeningResult": "inference", "DiagnosisResult": "inference",
    "Explanation": "inference", "read_xray": "io", "ImageReadError": "io",
    "WeightsError": "weights", "load_model": "weights", "SCREENING_CLASSES": "labels",
    "NIH_LABELS": "labels", "SPECS": "registry", "TASKS": "registry", "ModelSpec": "registry",
    "get_spec": "registry", "NotARadiographError": "gate", "RadiographGate": "gate",
}
__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below imports
    from .gate import NotARadiographError, RadiographGate  # noqa: F401
    from .inference import DiagnosisResult, Explanation, Predictor, ScreeningResult  # noqa: F401
    from .io import ImageReadError, read_xray  # noqa: F401
    from .labels import NIH_LABELS, SCREENING_CLASSES  # noqa: F401
    from .registry import SPECS, TASKS, ModelSpec, get_spec  # noqa: F401
    from .weights import WeightsError, load_model  # noqa: F401


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
