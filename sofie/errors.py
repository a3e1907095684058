"""The one exception type users see."""


class SofieError(Exception):
    """A user error: bad model, unsupported op, wrong input. The message names the culprit."""
