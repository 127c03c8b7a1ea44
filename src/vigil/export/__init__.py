"""The `export` stage's library: one module per format, one inference pipeline over every engine."""
