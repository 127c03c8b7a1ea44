"""Offline switches: the pipeline never downloads weights or installs packages at run time."""

from __future__ import annotations

import os

OFFLINE_ENV: dict[str, str] = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "False",
    "ORT_DISABLE_TELEMETRY": "1",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "GX_ANALYTICS_ENABLED": "False",
}


def apply_offline_switches() -> None:
    """Set every offline switch that the user has not set explicitly."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
