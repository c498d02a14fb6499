"""What the subscriber feature tells other features (connected by `webapp.features`).

* `erasing`: a person is being erased. Each receiver is called as
  `receiver(None, session=..., email=..., subscriber_id=...)` inside the erasure
  transaction, in the order receivers were connected, and scrubs its own tables
  (`subscriber_id` is None for a person who never subscribed, e.g. a donor erased from the
  donor page). A receiver that raises `ErasureBlocked` stops the erasure: the caller rolls
  back, so nothing is changed.
* `loading_demo`: `readership demo` is loading demo data. Each receiver is called as
  `receiver(app, session=..., now=...)` inside the demo transaction and returns a short
  description of what it added ("" for nothing).
* `loading_demo_history`: `readership demo --donors N --donations M` asks for a large
  history; each receiver is called as
  `receiver(app, session=..., donors=N, donations=M, now=..., progress=callable)` and returns
  a short description.
"""

from __future__ import annotations

from webapp.core.signals import OrderedSignal

erasing = OrderedSignal(
    "subscribers.erasing",
    doc="A person is being erased: receiver(None, session, email, subscriber_id).",
)
loading_demo = OrderedSignal(
    "subscribers.loading-demo",
    doc="Demo data is being loaded: receiver(app, session, now) -> description.",
)
loading_demo_history = OrderedSignal(
    "subscribers.loading-demo-history",
    doc="A large demo history is asked for: receiver(app, session, donors, donations, now, "
    "progress) -> description.",
)


class ErasureBlocked(ValueError):
    """Erasing now would lose something the person still relies on (a regular gift that
    Stripe goes on charging); the message says what to do first. Nothing was changed."""
