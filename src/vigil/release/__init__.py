"""The release half: calibrate confidences, (export), gate the release.

Modules: `ece` (ECE, D-ECE, reliability data), `calibration`
(fit and choose Platt / isotonic / temperature, export the lookup-table mapping), `mapping` (apply
that mapping with numpy only, for any runtime), `gate` (acceptance thresholds against metrics).
This file imports nothing, so `vigil.release.mapping` stays numpy-only.
"""
