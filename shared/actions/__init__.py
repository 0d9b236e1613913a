"""Custom actions: per-interaction state and the hand-off of slow work to the workers."""
