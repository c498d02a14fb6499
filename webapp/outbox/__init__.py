"""Transactional email that survives SMTP outages: an outbox table, delivery with backoff,
and the staff pages to read the local mailbox and the outbox."""
