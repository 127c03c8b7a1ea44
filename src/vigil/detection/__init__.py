"""The detection core: one shape for boxes, detections and ground truth, used by every package above.

Modules: `types` (ImageDetections, ImageTruth), `boxes` (IoU, areas, YOLO ↔ xyxy), `split_lists`
(the split stage's lists, read by one rule), `detections_file` (what `evaluate` writes and
`calibrate` reads). It imports numpy and vigil's base modules only, so data, metrics, models,
release and export can all build on it without converting at their borders.
"""
