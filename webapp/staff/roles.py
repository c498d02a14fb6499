"""Roles and what each may do. Views ask for a permission, never for a role name."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """A staff member's role."""

    ADMIN = "admin"
    EDITOR = "editor"
    FUNDRAISER = "fundraiser"
    VIEWER = "viewer"


class Permission(enum.StrEnum):
    """Something a staff page lets you see or do."""

    DASHBOARD = "dashboard"  # the staff start page
    SUBSCRIBERS_VIEW = "subscribers.view"  # list, search, one subscriber's history
    SUBSCRIBERS_MANAGE = "subscribers.manage"  # import, edit status
    SUBSCRIBERS_EXPORT = "subscribers.export"  # personal data leaves the app
    SUBSCRIBERS_ERASE = "subscribers.erase"  # erase a person everywhere
    #: Read every message in the local mailbox, personal sign-in links included. A message
    #: there can sign its reader in as a donor or subscriber, so only a role that may act for
    #: every recipient (admin) has it.
    MAILBOX = "mailbox"
    #: The outbox page (a recipient shown only where the role may see that person), retrying
    #: failed messages, the test email and the local mailbox's messages to one's own address.
    OUTBOX = "outbox"
    ARTICLES = "articles"
    DIGESTS = "digests"
    DONATIONS = "donations"
    REPORTS = "reports"
    #: Report pages and CSVs whose rows name people: what a role may not download it may not
    #: see either.
    REPORTS_PERSONAL = "reports.personal"
    SETTINGS = "settings"
    STAFF = "staff"  # manage staff users
    AUDIT = "audit"  # read the audit log


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.EDITOR: frozenset(
        {
            Permission.DASHBOARD,
            Permission.SUBSCRIBERS_VIEW,
            Permission.SUBSCRIBERS_MANAGE,
            Permission.SUBSCRIBERS_EXPORT,
            Permission.OUTBOX,
            Permission.ARTICLES,
            Permission.DIGESTS,
        }
    ),
    Role.FUNDRAISER: frozenset(
        {
            Permission.DASHBOARD,
            Permission.SUBSCRIBERS_VIEW,
            Permission.SUBSCRIBERS_EXPORT,
            Permission.OUTBOX,
            Permission.DONATIONS,
            Permission.REPORTS,
            Permission.REPORTS_PERSONAL,
        }
    ),
    Role.VIEWER: frozenset({Permission.DASHBOARD, Permission.REPORTS}),
}


def role_allows(role: str, permission: Permission) -> bool:
    """True when `role` has `permission` (unknown roles have none)."""
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
