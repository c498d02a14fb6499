"""The publication itself: its name, logo, colours and site URL (edited by admins)."""
