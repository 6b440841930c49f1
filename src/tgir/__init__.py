"""tgir: text-guided image retrieval you can run, trust and serve."""

__version__ = "0.1.0"


class TgirError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""
