"""Donations through Stripe: the donation pages, Checkout, webhooks, receipts, donor
self-service, offline gifts and the staff pages."""
