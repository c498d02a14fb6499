"""Developer tooling that is not part of the shipped app (emulators for `make run` and tests)."""
