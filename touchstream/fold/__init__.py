"""Customer-360 fold workers: ``python -m touchstream.fold`` (docs/scaling.md)."""
