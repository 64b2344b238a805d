"""Monitoring statistics (certificate watch, drift by cause, estimated accuracy, canaries, gates): pure functions."""
