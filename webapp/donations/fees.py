"""The card fee a donor may choose to cover: the one formula, used by the page and receipts."""

from __future__ import annotations

import math


def fee_to_cover(gift_minor: int, *, percent_bp: int, fixed_minor: int) -> int:
    """What to add to `gift_minor` so that, after the card fee (`percent_bp` basis points of
    the total plus `fixed_minor`), the publication receives the whole gift.

    total = ceil((gift + fixed) / (1 - rate)); the fee is total - gift.
    """
    if gift_minor <= 0:
        return 0
    rate = percent_bp / 10_000
    if not 0 <= rate < 1:
        raise ValueError("fee rate must be between 0% and 100%")
    total = math.ceil((gift_minor + fixed_minor) / (1 - rate))
    return total - gift_minor
