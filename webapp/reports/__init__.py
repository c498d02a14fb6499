"""Supporter reports: one definition per figure, the dashboard and the reports behind it."""
