"""``touchstream bench``: Touchstream against the machine's limits and against peers, in one run.

Every figure is measured in the same run as its baseline, so the ratios hold on
a noisy shared machine where absolute numbers do not.
"""
