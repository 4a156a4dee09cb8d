"""The token family state machine, explored by hypothesis over the real service and database.

Sequences of sign-ins, refreshes, reuses of spent refresh tokens, sign-outs and password resets;
after every step: a revoked family never yields a working token (no access token of it is
accepted, no refresh token of it issues a pair), and a live family's newest pair works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from portal.accounts.models import User
from portal.customers import service as customers
from tests.customers.conftest import SHOPPER_PASSWORD

EXAMPLES = 40
STEPS = 20
RUNS = {"cases": 0, "steps": 0}
_emails = count()


@dataclass
class Family:
    """What the test knows about one sign-in."""

    access: str
    refresh: str
    old_access: list[str] = field(default_factory=list)
    spent: list[str] = field(default_factory=list)
    revoked: bool = False


class TokenFamilies(RuleBasedStateMachine):
    """One shopper of one store; every rule goes through the service."""

    merchant_id: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.families: list[Family] = []
        self.password = SHOPPER_PASSWORD
        self.email = ""

    @initialize()
    def register(self) -> None:
        RUNS["cases"] += 1
        self.email = f"shopper{next(_emails)}@example.com"
        signed_in = customers.register(self.merchant_id, self.email, self.password, "Shopper")
        self.families.append(Family(signed_in.access_token, signed_in.refresh_token))

    def _pick(self, index: int) -> Family:
        return self.families[index % len(self.families)]

    @rule()
    def sign_in(self) -> None:
        RUNS["steps"] += 1
        signed_in = customers.sign_in_with_password(self.merchant_id, self.email, self.password)
        self.families.append(Family(signed_in.access_token, signed_in.refresh_token))

    @rule(index=st.integers(min_value=0))
    def refresh(self, index: int) -> None:
        RUNS["steps"] += 1
        family = self._pick(index)
        if family.revoked:
            with pytest.raises(customers.InvalidToken):
                customers.refresh(self.merchant_id, family.refresh)
            return
        renewed = customers.refresh(self.merchant_id, family.refresh)
        family.spent.append(family.refresh)
        family.old_access.append(family.access)
        family.access, family.refresh = renewed.access_token, renewed.refresh_token

    @precondition(lambda self: any(family.spent for family in self.families))
    @rule(index=st.integers(min_value=0), which=st.integers(min_value=0))
    def reuse_a_spent_refresh_token(self, index: int, which: int) -> None:
        RUNS["steps"] += 1
        with_spent = [family for family in self.families if family.spent]
        family = with_spent[index % len(with_spent)]
        with pytest.raises(customers.TokenReused):
            customers.refresh(self.merchant_id, family.spent[which % len(family.spent)])
        family.revoked = True

    @rule(index=st.integers(min_value=0))
    def sign_out(self, index: int) -> None:
        RUNS["steps"] += 1
        family = self._pick(index)
        if family.revoked:
            with pytest.raises(customers.InvalidToken):
                customers.authenticate(self.merchant_id, family.access)
            return
        customers.sign_out(customers.authenticate(self.merchant_id, family.access))
        family.revoked = True

    @rule()
    def reset_password(self) -> None:
        RUNS["steps"] += 1
        _, token = customers.issue_password_reset(self.merchant_id, self.email)
        self.password = f"new password {RUNS['steps']}"
        customers.confirm_password_reset(self.merchant_id, token, self.password)
        for family in self.families:
            family.revoked = True

    @invariant()
    def revoked_families_never_yield_a_working_token(self) -> None:
        for family in self.families:
            if not family.revoked:
                continue
            for access in [family.access, *family.old_access]:
                with pytest.raises(customers.InvalidToken):
                    customers.authenticate(self.merchant_id, access)
            for refresh in [family.refresh, *family.spent]:
                with pytest.raises((customers.InvalidToken, customers.TokenReused)):
                    customers.refresh(self.merchant_id, refresh)

    @invariant()
    def live_families_work(self) -> None:
        for family in self.families:
            if not family.revoked:
                shopper = customers.authenticate(self.merchant_id, family.access)
                assert shopper.customer.email == self.email


def test_a_revoked_family_never_yields_a_working_token(app: Flask, user: User) -> None:
    TokenFamilies.merchant_id = user.merchant_id
    RUNS.update(cases=0, steps=0)
    run_state_machine_as_test(
        TokenFamilies,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    print(f"\ntoken family state machine: {RUNS['cases']} cases, {RUNS['steps']} steps")
    assert RUNS["cases"] >= EXAMPLES
