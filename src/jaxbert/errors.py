"""The one exception type for user mistakes.

Raised with a message that names the file, line or config key at fault; the CLI prints it
without a traceback. It subclasses ValueError so library callers can catch it generically.
"""


class UserError(ValueError):
    """Bad input from the user (file, line, config key, flag)."""
