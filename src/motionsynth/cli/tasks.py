"""`motionsynth inbetween / complete / denoise` (being written)."""


def register(app) -> None:
    """Add this module's commands to the main app."""
