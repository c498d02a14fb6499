"""Scheduled work: thin job functions that open an app context and call features' services."""
