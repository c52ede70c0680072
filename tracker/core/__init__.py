"""The bottom layer: errors, bounds, the plain data models, time formats, hashes, atomic file
writes and the names shared by every layer. Imports nothing else from tracker.
"""
