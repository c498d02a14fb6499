"""The newsletter list: signup (page and embed), double opt-in, preferences, one-click
unsubscribe, staff list and history, CSV import/export, erasure and demo data."""
