"""Small shared pieces only: clock, signed tokens, security headers, network helpers."""
