"""Range estimation: how far away each box is, in metres, with the mapping fitted to known distances.

Two estimators share one interface (`estimators.RangeEstimator`): each turns the boxes of one image
into an *inverse-range signal* — geometric: box height / (fy · class height), which is exactly
1 / distance for a pinhole camera; depth: Depth Anything's relative disparity at the box, which is
1 / distance only up to an unknown scale and shift. `fit` maps either signal to metres as
1 / (scale · signal + shift), fitted with sklearn on objects of known distance (the seed's
`calibrate_depth_scale`). `range_file` is the release output (`models/range.json`) any runtime
applies; `stage` is the `range` stage's work (fit on val, score on test).
"""
