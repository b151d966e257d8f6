"""Plain-Python constants (names, poses, limits) for the MJCF models under models/."""
