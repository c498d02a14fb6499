"""Email events: bounces and complaints that relays report after sending, by webhook."""
