"""Comparing texts: the word diff, clauses, topics and flags, noise, and the change view (Change)
every publisher reads.
"""
