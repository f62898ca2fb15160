"""companion: real-time audio feedback for a relaxed, neutral ankle while running."""

__version__ = "0.1.0"
