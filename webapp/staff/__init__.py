"""Staff users, roles, sign-in, sessions and the audit log."""
