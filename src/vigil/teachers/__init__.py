"""Prompted, open-vocabulary teachers (Grounding DINO, OWLv2) loaded from a team's own local folder.

A teacher here is a transformers model the team already has on disk: vigil never downloads one
(the HF offline switches stay on). It is prompted with the dataset's class names, pseudo-labels
images in the YOLO format the student trains on, is scored on val with the same COCO code as every
other model, and can carry LoRA adapters. The student stays a prompt-free YOLO detector.
docs/TEACHERS.md has the folder layout and the commands (`vigil teacher …`).
"""
