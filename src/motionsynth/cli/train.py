"""`motionsynth train` (being written)."""


def register(app) -> None:
    """Add this module's commands to the main app."""
