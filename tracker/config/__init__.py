"""Settings: tracker.toml parsed into dataclasses, and cron expressions. Imports only core,
extract.rules and analysis.topics (to validate what it reads).
"""
