"""Settings: tracker.toml parsed into dataclasses, and cron expressions. Imports only core,
extract.rules and analysis.topics (to validate what it reads).
"""

CONFIG_NAME = "tracker.toml"  # looked for in the working folder; `init` writes it
