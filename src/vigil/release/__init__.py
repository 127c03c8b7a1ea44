"""The release half: calibrate confidences, (export), gate the release.

Modules: `calibrate_stage` (the calibrate stage: match, fit on val, measure on test), `ece` (ECE,
D-ECE, reliability data), `calibration_fit` (fit and choose Platt / isotonic / temperature, export
the lookup-table mapping), `mapping` (apply that mapping with numpy only, for any runtime), `gate`
(acceptance thresholds against metrics).
This file imports nothing, so `vigil.release.mapping` stays numpy-only.
"""
