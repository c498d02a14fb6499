"""Who may see which email: the outbox and the local mailbox hold every person's address and
whole messages, and many messages carry a personal sign-in link (a donor's self-service
link, a subscriber's confirm, preferences or unsubscribe link). Reading one is acting as that
person, so:

* the whole local mailbox is for roles with `Permission.MAILBOX` (admins); other staff with
  `Permission.OUTBOX` see only the messages addressed to their own address (their test
  emails);
* the outbox list shows a row's recipient, subject and error only to a role that may see the
  person it went to (`Permission.DONATIONS` for donation emails, `Permission.SUBSCRIBERS_VIEW`
  for subscription emails); the row itself (purpose, status, tries) stays visible so a
  failure can be noticed. An email kind not listed here is admin-only: a new kind fails
  closed until someone decides who may see it.

Only views call this module; it reads nothing from the request.
"""

from __future__ import annotations

from email.utils import getaddresses

from webapp.staff.services import Permission, role_allows

#: Outbox `purpose` (the email template) -> the permission that shows its recipient.
#: `staff_test` is not here on purpose: it goes to a staff member, shown to that person and
#: to those who manage staff.
RECIPIENT_PERMISSION: dict[str, Permission] = {
    "donation_receipt": Permission.DONATIONS,
    "donation_payment_failed": Permission.DONATIONS,
    "donation_plan_changed": Permission.DONATIONS,
    "donor_access": Permission.DONATIONS,
    "yearly_statement": Permission.DONATIONS,
    "confirm_subscription": Permission.SUBSCRIBERS_VIEW,
    "manage_subscription": Permission.SUBSCRIBERS_VIEW,
    "subscription_confirmed": Permission.SUBSCRIBERS_VIEW,
}


def same_address(a: str, b: str) -> bool:
    """True when two addresses (either may carry a display name) are the same mailbox."""
    first = getaddresses([a])
    second = getaddresses([b])
    if not first or not second:
        return False
    left, right = first[0][1].strip().lower(), second[0][1].strip().lower()
    return bool(left) and left == right


def may_read_whole_mailbox(role: str) -> bool:
    """True when `role` may open every message in the local mailbox."""
    return role_allows(role, Permission.MAILBOX)


def may_see_recipient(role: str, staff_email: str, *, purpose: str, to_address: str) -> bool:
    """True when a staff member (`role`, `staff_email`) may see who an outbox row went to,
    its subject and its last error."""
    if role_allows(role, Permission.MAILBOX):
        return True
    if same_address(staff_email, to_address):
        return True
    if purpose == "staff_test":
        return role_allows(role, Permission.STAFF)
    permission = RECIPIENT_PERMISSION.get(purpose)
    return permission is not None and role_allows(role, permission)
