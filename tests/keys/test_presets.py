"""The create form's presets use only scopes that exist."""

from __future__ import annotations

from portal.keys import presets, scopes


def test_offered_presets_hold_only_registered_scopes_of_their_type() -> None:
    offered = presets.offered()
    assert [preset.name for preset in offered] == [
        "Storefront",
        "Mobile app",
        "Analytics dashboard",
        "Order fulfilment",
        "Inventory sync",
        "Customer portal",
    ]
    for preset in offered:
        assert preset.registered_scopes
        assert scopes.validate_scopes(preset.key_type, preset.registered_scopes)
        assert 1 <= preset.rate_limit <= 10_000


def test_presets_whose_scopes_do_not_exist_yet_are_not_offered() -> None:
    # webhooks:* are in the SPEC but not (yet) in the registry; customer:auth is.
    assert "customer:auth" in scopes.SCOPES and "webhooks:read" not in scopes.SCOPES
    names = {preset.name for preset in presets.offered()}
    assert "Customer portal" in names and "Webhook management" not in names
    storefront = presets.find("storefront")
    assert storefront is not None and "customer:auth" in storefront.registered_scopes
    assert presets.find("webhooks") is None and presets.find("nope") is None
