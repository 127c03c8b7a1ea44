"""Evaluation: COCO metrics (pycocotools) per class, size and stratum; counts; PR curves and confusion; latency."""
