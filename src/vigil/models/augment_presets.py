"""Named augmentation presets: an environment's characteristic and an intensity, expanded into albumentations.

A team names what its camera meets (`fog: 0.3, night: 0.5, motion_blur: 0.2`) instead of writing
transform arguments. Each preset maps an intensity in (0, 1] to albumentations 2.x transforms whose
strength grows with it; 1.0 is the strongest the preset is meant for. Training draws each preset's
strength up to its intensity (`train.augment.presets`, each firing with `preset_p`); evaluate's
robustness table applies each preset at fixed severities (always firing, seeded), ImageNet-C style.
The outdoor set is the long-range scope team's (fog, sun flare, ISO noise, motion blur, JPEG).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vigil.errors import VigilError
from vigil.models.params import AlbumentationsStep

Steps = list[tuple[str, dict[str, Any]]]


def _odd(value: float) -> int:
    n = max(3, int(round(value)))
    return n if n % 2 else n + 1


def _fog(i: float) -> Steps:
    return [("RandomFog", {"fog_coef_range": [0.1 * i, 0.6 * i], "alpha_coef": 0.08})]


def _sun_flare(i: float) -> Steps:
    circles = max(1, round(6 * i))
    return [
        (
            "RandomSunFlare",
            {
                "flare_roi": [0.0, 0.0, 1.0, 0.5],
                "src_radius": max(20, round(160 * i)),
                "num_flare_circles_range": [1, circles + 1],
            },
        )
    ]


def _iso_noise(i: float) -> Steps:
    return [("ISONoise", {"color_shift": [0.01, 0.01 + 0.05 * i], "intensity": [0.1 * i, 0.8 * i]})]


def _motion_blur(i: float) -> Steps:
    return [("MotionBlur", {"blur_limit": [3, _odd(3 + 18 * i)]})]


def _jpeg(i: float) -> Steps:
    return [("ImageCompression", {"quality_range": [max(5, round(95 - 85 * i)), 95]})]


def _night(i: float) -> Steps:
    return [
        (
            "RandomBrightnessContrast",
            {"brightness_limit": [-0.6 * i, -0.2 * i], "contrast_limit": [-0.4 * i, 0.0]},
        ),
        ("GaussNoise", {"std_range": [0.02 * i, 0.08 * i]}),
    ]


def _rain(i: float) -> Steps:
    kind = "drizzle" if i < 0.4 else "heavy" if i < 0.8 else "torrential"
    return [("RandomRain", {"rain_type": kind, "brightness_coefficient": 1.0 - 0.3 * i})]


PRESETS: dict[str, Callable[[float], Steps]] = {
    "fog": _fog,
    "sun_flare": _sun_flare,
    "iso_noise": _iso_noise,
    "motion_blur": _motion_blur,
    "jpeg": _jpeg,
    "night": _night,
    "rain": _rain,
}


def preset_steps(name: str, intensity: float, p: float, where: str) -> list[AlbumentationsStep]:
    """The albumentations steps of one preset at `intensity`, each firing with probability `p`."""
    if name not in PRESETS:
        raise VigilError(
            f"{name!r} is not a preset",
            field=where,
            hint=f"one of {', '.join(PRESETS)}; or write the transforms in `albumentations`",
        )
    if (
        isinstance(intensity, bool)
        or not isinstance(intensity, int | float)
        or not 0 < intensity <= 1
    ):
        raise VigilError(f"intensity {intensity!r} is not in (0, 1]", field=f"{where}.{name}")
    return [AlbumentationsStep(cls, p, args) for cls, args in PRESETS[name](float(intensity))]


def expand_presets(
    presets: Mapping[str, float], p: float, where: str = "train.augment.presets"
) -> list[AlbumentationsStep]:
    """Every preset's steps, in the order the presets are written."""
    return [step for name, i in presets.items() for step in preset_steps(name, i, p, where)]


def corrupter(name: str, severity: float, seed: int) -> Callable[[Any], Any]:
    """A function BGR uint8 array → the same image under preset `name` at `severity`, always applied
    and seeded (the same images get the same corruption in every run)."""
    import albumentations as A
    import cv2

    from vigil.models.yolo import albumentations_transforms

    steps = preset_steps(name, severity, 1.0, "evaluate.robustness.presets")
    pipeline = A.Compose(albumentations_transforms(steps, "evaluate.robustness"), seed=seed)

    def apply(bgr: Any) -> Any:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return cv2.cvtColor(pipeline(image=rgb)["image"], cv2.COLOR_RGB2BGR)

    return apply


def preview_grid(images: list[Any], columns: Mapping[str, float], seed: int = 0) -> Any:
    """A BGR grid: one row per image, the original then one column per preset at its intensity,
    each column titled `name intensity`."""
    import cv2
    import numpy as np

    height = max(i.shape[0] for i in images)
    width = max(i.shape[1] for i in images)
    title = 22

    def tile(picture: Any, text: str | None) -> Any:
        canvas = np.full((height + title, width, 3), 255, dtype=np.uint8)
        canvas[title : title + picture.shape[0], : picture.shape[1]] = picture
        if text:
            cv2.putText(
                canvas, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
            )
        return canvas

    apply = {name: corrupter(name, i, seed) for name, i in columns.items()}
    rows = []
    for n, image in enumerate(images):
        cells = [tile(image, "original" if n == 0 else None)]
        cells += [
            tile(f(image), f"{name} {columns[name]:g}" if n == 0 else None)
            for name, f in apply.items()
        ]
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0)
