"""Importers: turn the layouts other tools write into the canonical dataset (see `vigil.data.layout`).

Each format module reads and checks its source into a `SourceDataset` (pixel boxes, no writes);
`writer.write_dataset` then applies the class map and the metadata, and writes the canonical folder
atomically. `imagefolder` (classifier data, no boxes) reads and writes its own sibling classifier
layout with the same checks and output rules. A source that cannot be read is refused with one
`VigilError` naming the file, the line or annotation id and the field, before anything is written.
"""

DEFAULT_MIN_PER_CLASS = 300  # imagefolder: the shelf team's seed asks 300 images per SKU
