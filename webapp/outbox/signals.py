"""What the outbox tells other features (connected by the composition root, `webapp.features`).

`permanent_failure` is sent when a mail server refuses an address for good (a 5xx reply), for
transactional mail and digest deliveries alike. Each receiver is called as
`receiver(None, session=..., address=..., reason=...)` inside the delivery transaction, in
its own savepoint, in the order receivers were connected: one that raises is logged and its
changes rolled back; the failure itself is still recorded (`run_permanent_failure_hooks`).
"""

from __future__ import annotations

from webapp.core.signals import OrderedSignal

permanent_failure = OrderedSignal(
    "outbox.permanent-failure",
    doc="A server refused an address for good: receiver(None, session, address, reason).",
)
