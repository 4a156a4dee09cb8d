import pytest

from portal.keys.scopes import (
    DEFAULT_SCOPES,
    SCOPES,
    Scope,
    ScopeError,
    scopes_for,
    validate_scopes,
)

BOTH = frozenset({"publishable", "secret"})
SECRET = frozenset({"secret"})

# The SPEC's table, row for row: scope, what it permits, key types.
SPEC_TABLE = [
    ("catalog:read", "read products and markets of the store", BOTH),
    ("cart:write", "create and change carts", BOTH),
    (
        "checkout:create",
        "turn a cart into a checkout session (chk_…) and a pending order",
        BOTH,
    ),
    (
        "customer:auth",
        "shoppers register, sign in, refresh, sign out, reset passwords, read their own orders",
        BOTH,
    ),
    ("products:read", "admin product list with unpublished products and inventory", SECRET),
    ("products:write", "create, update, delete products", SECRET),
    ("orders:read", "list and read orders", SECRET),
    ("orders:write", "fulfil and cancel orders", SECRET),
    ("customers:read", "read customers", SECRET),
    ("customers:write", "update customers, sign a customer out everywhere", SECRET),
    ("analytics:read", "usage and sales figures", SECRET),
    ("webhooks:read", "webhook endpoints and their delivery log", SECRET),
    ("webhooks:write", "create, update, delete, test endpoints; redeliver", SECRET),
    ("settings:read", "the store's settings", SECRET),
    ("settings:write", "the store's settings", SECRET),
]
SECRET_ONLY = [name for name, _, key_types in SPEC_TABLE if key_types == SECRET]


def test_registry_lists_the_spec_scopes_in_order():
    assert list(SCOPES) == [name for name, _, _ in SPEC_TABLE]


@pytest.mark.parametrize(("name", "permits", "key_types"), SPEC_TABLE)
def test_each_scope_matches_its_spec_row(name, permits, key_types):
    scope = SCOPES[name]

    assert scope == Scope(name, scope.description, key_types)
    assert scope.description == permits[0].upper() + permits[1:] + "."
    assert scope.secret_only is (key_types == SECRET)


def test_defaults():
    assert DEFAULT_SCOPES == {
        "publishable": ("catalog:read", "cart:write", "checkout:create", "customer:auth"),
        "secret": ("products:read", "orders:read"),
    }


@pytest.mark.parametrize("key_type", ["publishable", "secret"])
def test_defaults_are_valid_for_their_key_type(key_type):
    assert validate_scopes(key_type, DEFAULT_SCOPES[key_type]) == DEFAULT_SCOPES[key_type]


@pytest.mark.parametrize(
    ("key_type", "names"),
    [
        ("publishable", ["catalog:read", "cart:write", "checkout:create", "customer:auth"]),
        ("secret", [name for name, _, _ in SPEC_TABLE]),
    ],
)
def test_scopes_for_lists_what_a_key_type_may_hold_in_registry_order(key_type, names):
    assert [scope.name for scope in scopes_for(key_type)] == names


@pytest.mark.parametrize("name", SECRET_ONLY)
def test_secret_only_scope_is_rejected_for_publishable_keys(name):
    with pytest.raises(ScopeError) as raised:
        validate_scopes("publishable", ["catalog:read", name])

    assert str(raised.value) == f'"{name}" is for secret keys only.'


@pytest.mark.parametrize("name", SECRET_ONLY)
def test_secret_only_scope_is_accepted_for_secret_keys(name):
    assert validate_scopes("secret", [name]) == (name,)


@pytest.mark.parametrize("key_type", ["publishable", "secret"])
@pytest.mark.parametrize("name", ["orders:delete", "", "Catalog:read", "catalog:read "])
def test_unknown_scope_is_rejected_by_name(key_type, name):
    with pytest.raises(ScopeError) as raised:
        validate_scopes(key_type, [name])

    assert str(raised.value) == f'Unknown scope "{name}".'


@pytest.mark.parametrize(
    ("key_type", "names", "expected"),
    [
        ("secret", [], ()),
        ("publishable", ["checkout:create", "catalog:read"], ("catalog:read", "checkout:create")),
        ("secret", ["orders:read", "catalog:read", "orders:read"], ("catalog:read", "orders:read")),
        (
            "secret",
            iter(["analytics:read", "products:write"]),
            ("products:write", "analytics:read"),
        ),
    ],
)
def test_selection_is_deduplicated_in_registry_order(key_type, names, expected):
    assert validate_scopes(key_type, names) == expected


def test_scope_error_is_a_value_error():
    with pytest.raises(ValueError, match="orders:write"):
        validate_scopes("publishable", ["orders:write"])


@pytest.mark.parametrize("function", [scopes_for, lambda key_type: validate_scopes(key_type, [])])
def test_unknown_key_type_is_rejected(function):
    with pytest.raises(ScopeError, match='Unknown key type "restricted"'):
        function("restricted")
