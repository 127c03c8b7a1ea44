"""Scoring detections against ground truth: never runs a model, never imports ultralytics.

Modules: truth (labels → `ImageTruth`), coco (pycocotools mAP per class, size, stratum, group),
counts (count error), curves (PR curves and confusion matrix for DVC plots), matching (correct /
incorrect per detection, for calibration and pseudo-label precision), params (the `evaluate:`
section). Running the models for the evaluate stage is `vigil.models.evaluate`.
"""
