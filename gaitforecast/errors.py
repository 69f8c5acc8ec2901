"""The one exception type for bad input or a refused request.

Library code raises :class:`GaitforecastError` (a ``ValueError``) with a message that names what is wrong
and, where there is one, the fix. The CLI turns it into a one-line message on stderr and exit code 2.
"""


class GaitforecastError(ValueError):
    """Bad input or a refused request; the message is meant for the user."""
