"""`readership staff ...`: create and list staff users, reset a password, drop a lost TOTP."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from webapp.core.clock import get_clock
from webapp.db import get_database
from webapp.staff import services
from webapp.staff.roles import Role
from webapp.staff.setup import format_utc

staff_cli = AppGroup("staff", help="Staff users: create, list, set-password, disable-totp.")


def _ask_password() -> str:
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@staff_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, help="One of: " + ", ".join(r.value for r in Role) + ".")
@click.option("--password", default=None, help="Omit to be asked (hidden, twice).")
@click.option("--name", default="", help="Display name.")
def create_command(email: str, role: str, password: str | None, name: str) -> None:
    """Add a staff user who can sign in at /staff/login."""
    try:
        # Check the cheap things before asking for a password nobody will use.
        services.validate_email(email)
        services.validate_role(role)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if password is None:
        password = _ask_password()
    now = get_clock().now()
    with get_database(current_app).session() as session:
        try:
            user, _ = services.invite_staff_user(
                session,
                actor=None,
                email=email,
                role=role,
                name=name,
                password=password,
                now=now,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"Created {user.role} {user.email} (id {user.id}).")


@staff_cli.command("list")
def list_command() -> None:
    """Show every staff user: address, role, status, two-factor, last sign-in."""
    with get_database(current_app).session() as session:
        users = services.list_staff(session)
        if not users:
            click.echo("No staff users yet. Add one: readership staff create EMAIL --role admin")
            return
        for user in users:
            last = format_utc(user.last_login_at) or "never"
            click.echo(
                f"{user.email:40} {user.role:10} {'active' if user.active else 'inactive':8} "
                f"{'totp' if user.totp_enabled else '-':4} last sign-in: {last}"
            )


@staff_cli.command("set-password")
@click.argument("email")
@click.option("--password", default=None, help="Omit to be asked (hidden, twice).")
def set_password_command(email: str, password: str | None) -> None:
    """Give a staff user a new password (their sessions are signed out)."""
    with get_database(current_app).session() as session:
        user = services.get_staff_by_email(session, email)
        if user is None:
            raise click.ClickException(f"No staff user with the address {email}.")
        if password is None:
            password = _ask_password()
        try:
            services.set_password(session, user=user, password=password, now=get_clock().now())
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"Password of {user.email} changed; their sessions were signed out.")


@staff_cli.command("disable-totp")
@click.argument("email")
def disable_totp_command(email: str) -> None:
    """Turn off two-factor sign-in for someone who lost their phone."""
    with get_database(current_app).session() as session:
        user = services.get_staff_by_email(session, email)
        if user is None:
            raise click.ClickException(f"No staff user with the address {email}.")
        if not services.disable_totp(session, user=user, now=get_clock().now()):
            click.echo(f"Two-factor sign-in was not on for {user.email}.")
            return
        session.commit()
        click.echo(f"Two-factor sign-in is off for {user.email}; they sign in with the password.")
