"""A local Stripe for tests and `make run`: localstripe plus the resources it lacks.

`python -m devtools.stripe_emulator --port 12111 [--store DIR]` prints one line,
`Stripe emulator on http://127.0.0.1:12111`, and serves until killed. Point the real
`stripe` SDK at it (`stripe.StripeClient(key, base_addresses={"api": url})`, any
`sk_test_...` key). It binds loopback only and keeps its pickle store in DIR (kept between
runs) or in a temporary folder removed at exit, never in localstripe's
`/tmp/localstripe.pickle`.

On top of localstripe (customers, payment methods, payment intents, plans, products,
subscriptions, invoices, events) `extensions.py` adds: Prices (a recurring Price shadows a
Plan with the same id, so localstripe's subscriptions can use it), Checkout Sessions with a
test-only pay page (`GET /_checkout/<id>`, `POST /_checkout/<id>/pay` with `outcome`
= `success`, `fail` or `async`, then `POST /_checkout/<id>/settle`), billing-portal sessions
(`/_portal/<id>`), `Idempotency-Key` replay for every `POST /v1/...`, an events list
filtered by `type`/`types`/`created` (newest first, `starting_after` paging),
`customer.subscription.updated` events with `previous_attributes`, `invoice.paid` and
`invoice.finalized` events, and a webhook sender that delivers events one at a time, in
order, to loopback receivers only, signs them the way `stripe.Webhook.construct_event`
checks, gives up on a receiver after a timeout, and records each attempt
(`GET /_config/deliveries`). Register a receiver with `POST /_config/webhooks/<id>` (`url`,
`secret`, optional `events`); remove it with `DELETE /_config/webhooks/<id>`.

It cannot move time: renewals, failed renewals and the end of a period are not emulated.
See `extensions.py` for the object shapes that follow an old API version.
"""
