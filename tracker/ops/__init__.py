"""Whole-program use cases that drive the pipeline and the publishers together: the
scheduler's jobs and the offline demo."""
