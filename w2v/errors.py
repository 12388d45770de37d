"""The one exception type for bad user input: its message is a single line that names the fix."""


class ConfigError(ValueError):
    """Raised for invalid input (config values, corpus files, archives) before any heavy work."""
