"""Operator commands: `flask --app wsgi <command>`."""

from __future__ import annotations

import json
from datetime import timedelta

import click
from flask import Flask

from portal.accounts import service as accounts
from portal.accounts.roles import ROLES
from portal.database import utcnow
from portal.extensions import db
from portal.keys import service as keys


def register(app: Flask) -> None:
    """Add the operator commands to the app's CLI."""
    commands = (
        create_merchant,
        add_member,
        create_key,
        revoke_key,
        set_plan,
        seed_demo,
        prune_usage,
        worker,
    )
    for command in commands:
        app.cli.add_command(command)


OPERATOR = keys.Actor(name="operator (CLI)")


@click.command("create-merchant")
@click.option("--email", required=True, help="Email of the merchant's first user.")
@click.option("--password", required=True, help="Password (at least 10 characters).")
@click.option("--name", required=True, help="Store name.")
def create_merchant(email: str, password: str, name: str) -> None:
    """Create a merchant and its first user."""
    try:
        user = accounts.register(accounts.NewAccount(email, password, name))
    except accounts.AccountError as error:
        raise click.ClickException(error.message) from error
    click.echo(
        f"Created merchant {user.merchant.name!r} (id {user.merchant.id}) "
        f"with {user.email} as its owner."
    )


@click.command("add-member")
@click.option("--merchant-email", required=True, help="Email of a member of the store.")
@click.option("--email", required=True, help="Email of the person to add.")
@click.option("--role", required=True, type=click.Choice(list(ROLES)), help="Their role.")
@click.option("--password", default=None, help="Password, if the person has no account yet.")
def add_member(merchant_email: str, email: str, role: str, password: str | None) -> None:
    """Make a person a member of a store with a role (or change their role)."""
    try:
        membership = accounts.add_member(merchant_email, email, role, password)
    except accounts.AccountError as error:
        raise click.ClickException(error.message) from error
    click.echo(
        f"{membership.user.email} is now {role} of {membership.merchant.name!r} "
        f"(id {membership.merchant_id})."
    )


@click.command("create-key")
@click.option("--merchant-email", required=True, help="Email of a user of the merchant.")
@click.option("--type", "key_type", required=True, type=click.Choice(["publishable", "secret"]))
@click.option("--label", required=True)
@click.option("--description", default="")
@click.option(
    "--scope",
    "scope_names",
    multiple=True,
    help="Repeat for each scope; default: the type's defaults.",
)
@click.option("--origin", "origins", multiple=True, help="Allowed origin (publishable keys).")
@click.option("--ip-range", "ip_ranges", multiple=True, help="Allowed CIDR range (secret keys).")
@click.option("--rate-limit", type=int, default=keys.RATE_LIMIT_DEFAULT, show_default=True)
@click.option("--expires-in-days", type=int, default=None)
@click.option("--market", "market_code", default=None, help="Market code; default: all markets.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id": ..., "key": "..."}.')
def create_key(
    merchant_email: str,
    key_type: str,
    label: str,
    description: str,
    scope_names: tuple[str, ...],
    origins: tuple[str, ...],
    ip_ranges: tuple[str, ...],
    rate_limit: int,
    expires_in_days: int | None,
    market_code: str | None,
    as_json: bool,
) -> None:
    """Create a key for a merchant and print it (the only time it is shown)."""
    user = accounts.find_user(merchant_email)
    if user is None:
        raise click.ClickException(f"No merchant user with the email {merchant_email}.")
    market_id = None
    if market_code:
        market = accounts.find_market_by_code(user.merchant_id, market_code)
        if market is None:
            raise click.ClickException(f"The merchant has no market {market_code!r}.")
        market_id = market.id
    if expires_in_days is not None and expires_in_days < 1:
        raise click.ClickException("--expires-in-days must be 1 or more.")
    settings = keys.KeySettings(
        label=label,
        description=description,
        scopes=list(scope_names) if scope_names else None,
        market_id=market_id,
        allowed_origins=list(origins),
        allowed_ip_ranges=list(ip_ranges),
        rate_limit=rate_limit,
        expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    try:
        key, token = keys.create_key(user.merchant_id, key_type, settings, OPERATOR)
    except keys.KeyInvalid as error:
        reasons = "; ".join(" ".join(messages) for messages in error.errors.values())
        raise click.ClickException(reasons) from error
    if as_json:
        click.echo(json.dumps({"id": key.id, "key": token}))
    else:
        click.echo(f"Created {key_type} key {key.id} ({key.label}): {token}")
        if key_type == "secret":
            click.echo("Store it now: it will not be shown again.")


@click.command("revoke-key")
@click.argument("key_id", type=int)
def revoke_key(key_id: int) -> None:
    """Revoke a key by its id, now and for good."""
    key = db.session.get(keys.ApiKey, key_id)
    if key is None:
        raise click.ClickException(f"No key with the id {key_id}.")
    try:
        keys.revoke_key(key, OPERATOR)
    except keys.KeyNotActive as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Revoked key {key.id} ({key.label}, {key.masked}).")


@click.command("set-plan")
@click.option("--merchant-email", required=True)
@click.argument("plan", type=click.Choice(["active", "inactive"]))
def set_plan(merchant_email: str, plan: str) -> None:
    """Turn a merchant's plan on or off (an inactive plan's keys are refused by the API)."""
    try:
        merchant = accounts.set_plan(merchant_email, plan)
    except accounts.AccountError as error:
        raise click.ClickException(error.message) from error
    click.echo(f"Merchant {merchant.name!r} is now {plan}.")


@click.command("seed-demo")
def seed_demo() -> None:
    """Create the demo merchant (once) and print its login."""
    from portal.demo import DEMO_EMAIL, DEMO_PASSWORD, seed

    created = seed()
    state = "Created" if created else "Already there:"
    click.echo(f"{state} demo merchant “Demo Store”.")
    click.echo(f"  Sign in at /auth/login with {DEMO_EMAIL} / {DEMO_PASSWORD}")
    for label, token in created.items():  # shown this once: only their hashes are stored
        variable = "PUBLISHABLE_KEY" if token.startswith("pk_") else "SECRET_KEY"
        click.echo(f"  {label} key: export {variable}={token}")


@click.command("prune-usage")
@click.option(
    "--retention-days",
    type=click.IntRange(min=1),
    default=None,
    help="Keep this many days of rollups (default: USAGE_RETENTION_DAYS, 400).",
)
def prune_usage(retention_days: int | None) -> None:
    """Delete usage rollups past the retention window and calls beyond the last 50 per key."""
    from flask import current_app

    from portal.usage import rollup

    days = retention_days or current_app.config["USAGE_RETENTION_DAYS"]
    removed = rollup.prune(days)
    click.echo(
        f"Kept {days} days. Removed {removed['hourly']} hourly rollups, "
        f"{removed['endpoint_daily']} daily endpoint rows and {removed['calls']} old calls."
    )


@click.command("worker")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Threads running tasks side by side.",
)
def worker(workers: int) -> None:
    """Run the background worker: mail, expiries and every periodic job, until Ctrl-C."""
    import logging

    from flask import current_app

    from portal.tasks import huey

    if huey.immediate:
        raise click.ClickException("TASK_IMMEDIATE is set: tasks already run where they are sent.")
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s [worker] %(levelname)s %(name)s: %(message)s"
        )
    logging.getLogger("portal").setLevel(logging.INFO)
    queue = current_app.config["TASK_QUEUE_URL"].partition("://")[0]
    click.echo(f"Background worker on the {queue} queue {huey.name!r} with {workers} threads.")
    huey.create_consumer(workers=workers, worker_type="thread", periodic=True).run()
