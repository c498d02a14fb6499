"""Tests for the developer tooling in `devtools/`."""
