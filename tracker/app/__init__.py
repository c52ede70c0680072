"""Use cases: one run over the documents (pipeline), import, reextract, history, status, schedule,
evaluation.
"""
