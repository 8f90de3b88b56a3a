"""The storage layer's one exception family: a one-line message for the item's status."""


class StorageError(Exception):
    """One-line message; goes into the item's status_message. `details` holds the whole story."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details or message


class NotEmpty(StorageError):
    """Delete refused: the fileset holds data."""


class Unsafe(StorageError):
    """A link, a non-folder or a foreign owner where the service walks: nothing was done there."""
