"""The active-learning loop: rank the unlabelled pool, hand the top N to people, take their labels back.

`vigil queue rank` runs the deployed detectors on the pool and writes a queue folder (Label Studio
tasks, crops, the models' guesses); `vigil queue accept` turns a Label Studio export of those tasks
into a new dataset version. The scoring (`scoring`) and the Label Studio format (`labelstudio`) are
pure; `rank` and `accept` do the files.
"""
