"""The CUDA paths: a tiny teacher trains on the GPU, and its detections there match the CPU's.

Marked `gpu`: skipped with the reason where `torch.cuda.is_available()` is False (this project's CI
and its 2-core machines). Run them on a CUDA machine with `pytest -m gpu`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_models_train import CLASSES, make_images, paths_for, tiny_params

pytestmark = [pytest.mark.gpu, pytest.mark.trains]


def test_a_tiny_teacher_trains_on_cuda_and_predicts_as_on_the_cpu(tmp_path: Path) -> None:
    import torch
    from ultralytics import YOLO

    from vigil.models.train import train_detector

    root = make_images(tmp_path / "data")
    paths = paths_for(root, tmp_path / "ws")
    metrics = train_detector(tiny_params(device="0", epochs=2), 0, paths)
    assert metrics["epochs_run"] == 2 and paths.weights.is_file()
    model = YOLO(str(paths.weights))
    assert model.names == dict(enumerate(CLASSES))
    image = np.full((64, 64, 3), 127, dtype=np.uint8)
    on_gpu = model.predict(image, device=0, conf=0.001, imgsz=64, verbose=False)[0].boxes
    on_cpu = model.predict(image, device="cpu", conf=0.001, imgsz=64, verbose=False)[0].boxes
    assert torch.cuda.max_memory_allocated() > 0
    assert len(on_gpu) == len(on_cpu)
    if len(on_cpu):
        assert np.allclose(on_gpu.xyxy.cpu().numpy(), on_cpu.xyxy.numpy(), atol=0.5)
        assert np.allclose(on_gpu.conf.cpu().numpy(), on_cpu.conf.numpy(), atol=1e-3)
