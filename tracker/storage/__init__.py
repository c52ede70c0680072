"""The store folder (snapshots/), the SQLite index rebuilt from it, and verify. Only this layer
writes under the store.
"""
