"""Members' roles: what each role may do (one table), and what each portal page needs."""

from __future__ import annotations

from dataclasses import dataclass

OWNER = "owner"
ADMIN = "admin"
DEVELOPER = "developer"
VIEWER = "viewer"
ROLES: tuple[str, ...] = (OWNER, ADMIN, DEVELOPER, VIEWER)
ROLE_LABELS = {
    OWNER: "Owner: everything",
    ADMIN: "Admin: everything but owners and the plan",
    DEVELOPER: "Developer: keys, webhooks and usage",
    VIEWER: "Viewer: reads everything but key values and webhook secrets",
}

_EVERYONE = frozenset(ROLES)
_BUILDERS = frozenset({OWNER, ADMIN, DEVELOPER})
_MANAGERS = frozenset({OWNER, ADMIN})
_OWNERS = frozenset({OWNER})

# The SPEC's permissions, in one place: the roles that hold each.
PERMISSIONS: dict[str, frozenset[str]] = {
    "keys:read": _EVERYONE,
    "keys:write": _BUILDERS,  # create, edit, rotate, revoke
    "keys:reveal": _BUILDERS,  # see a key's value (a publishable key's too)
    "usage:read": _EVERYONE,
    "audit:read": _EVERYONE,
    "markets:read": _EVERYONE,
    "markets:write": _MANAGERS,
    "members:read": _EVERYONE,
    "members:write": _MANAGERS,  # invite, change roles, remove (admins: never an owner)
    "members:owners": _OWNERS,  # make, demote or remove an owner
    "customers:read": _EVERYONE,  # the store's shoppers, their orders and open sessions
    "customers:write": _MANAGERS,  # sign a shopper out everywhere
    "webhooks:read": _EVERYONE,
    "webhooks:write": _BUILDERS,
    "webhooks:secret": _BUILDERS,  # reveal or rotate a webhook's signing secret
    "settings:read": _EVERYONE,
    "settings:write": _MANAGERS,
    "account:security": _EVERYONE,  # one's own sign-in: two-factor set-up and recovery codes
    "security:write": _OWNERS,  # require two-factor sign-in for every member
    "plan:write": _OWNERS,
}


# What a person may only do once their email is confirmed (sign-up mails a link): making keys,
# and inviting others (which mails them from the store).
CONFIRMED_EMAIL_ENDPOINTS = frozenset({"keys.new_key", "members.invite"})


def allows(role: str | None, permission: str) -> bool:
    """Whether a member with `role` holds `permission` (unknown permissions: nobody)."""
    return role is not None and role in PERMISSIONS.get(permission, frozenset())


@dataclass(frozen=True)
class Access:
    """What a portal endpoint needs: `read` for GET and HEAD, `write` for every other method.

    `None` means no permission is checked (pages for visitors who are not signed in).
    """

    read: str | None
    write: str | None

    @classmethod
    def only(cls, permission: str) -> Access:
        """The same permission to see the page and to post it (forms of write actions)."""
        return cls(permission, permission)

    def permission_for(self, method: str) -> str | None:
        """The permission a request with this HTTP method needs."""
        return self.read if method in ("GET", "HEAD", "OPTIONS") else self.write


PUBLIC = Access(None, None)

# Every portal endpoint, with what it needs. A signed-in request to an endpoint missing here is
# refused (403): a new page must say who may use it (tests/accounts/test_roles.py checks).
ENDPOINT_ACCESS: dict[str, Access] = {
    "static": PUBLIC,
    "healthz": PUBLIC,
    "api_docs": PUBLIC,  # the API reference, for anyone
    "web.index": PUBLIC,
    "accounts.login": PUBLIC,
    "accounts.register": PUBLIC,
    "accounts.logout": PUBLIC,
    "accounts.check_inbox": PUBLIC,  # after sign-up, whoever signed up
    "accounts.confirm_email": PUBLIC,  # the sign-up mail's link: it may open signed out
    "accounts.resend_confirmation": PUBLIC,  # any signed-in person, for their own address
    "keys.list_keys": Access.only("keys:read"),
    "keys.market_keys": Access.only("keys:read"),
    "keys.show_key": Access.only("keys:read"),
    "keys.new_key": Access.only("keys:write"),
    "keys.edit_key": Access.only("keys:write"),
    "keys.rotate_key": Access.only("keys:write"),
    "keys.revoke_key": Access.only("keys:write"),
    "keys.reveal": Access.only("keys:write"),  # the key a form just made, shown once
    "keys.audit_log": Access.only("audit:read"),
    "keys.audit_csv": Access.only("audit:read"),
    "keys.markets": Access("markets:read", "markets:write"),
    "keys.rename_market": Access.only("markets:write"),
    "usage.overview": Access.only("usage:read"),
    "usage.overview_csv": Access.only("usage:read"),
    "usage.key_usage": Access.only("usage:read"),
    "usage.key_usage_csv": Access.only("usage:read"),
    "customers.list_customers": Access.only("customers:read"),
    "customers.show_customer": Access.only("customers:read"),
    "customers.sign_out_customer": Access.only("customers:write"),
    "settings.store": Access("settings:read", "settings:write"),
    "webhooks.list_endpoints": Access.only("webhooks:read"),
    "webhooks.show_endpoint": Access.only("webhooks:read"),
    "webhooks.new_endpoint": Access.only("webhooks:secret"),  # shows the new signing secret
    "webhooks.edit_endpoint": Access.only("webhooks:write"),
    "webhooks.toggle_endpoint": Access.only("webhooks:write"),
    "webhooks.test_endpoint": Access.only("webhooks:write"),
    "webhooks.redeliver": Access.only("webhooks:write"),
    "webhooks.delete_endpoint": Access.only("webhooks:write"),
    "webhooks.rotate_secret": Access.only("webhooks:secret"),
    "members.list_members": Access.only("members:read"),
    "members.invite": Access.only("members:write"),
    "members.change_role": Access.only("members:write"),
    "members.remove": Access.only("members:write"),
    "members.resend": Access.only("members:write"),
    "members.revoke": Access.only("members:write"),
    "members.accept": PUBLIC,  # the invitation link: the person may not have an account yet
    "members.switch_store": PUBLIC,  # any member, between their own stores (checked there)
    "twofactor.setup": Access.only("account:security"),
    "twofactor.regenerate": Access.only("account:security"),
    "twofactor.disable": Access.only("account:security"),
    "twofactor.require": Access.only("security:write"),
    "twofactor.challenge": PUBLIC,  # the code step of signing in: nobody is signed in yet
}
