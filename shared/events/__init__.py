"""The event history (records of every acknowledged webhook and action job) and paused handlers."""
