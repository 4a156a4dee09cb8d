"""The service on a real database with a fixed clock: turning on, codes used once, recovery
codes kept as keyed hashes and used once, turning off, and the store's requirement."""

from __future__ import annotations

import pytest

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.extensions import db
from portal.keys.models import AuditEvent
from portal.twofactor import service, totp
from portal.twofactor.models import RecoveryCode
from tests.factories import PASSWORD
from tests.twofactor.conftest import Clock, TwoFactor, turn_on


@pytest.fixture
def member(user: User, clock: Clock) -> tuple[User, TwoFactor]:
    """The owner with two-factor sign-in on."""
    return user, turn_on(user, clock)


def _another_code(code: str) -> str:
    """Six digits that are not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))


def test_turning_on_needs_the_right_code(user: User, clock: Clock) -> None:
    secret = totp.new_secret()

    with pytest.raises(service.TwoFactorError, match="not right"):
        service.enable(user, secret, _another_code(totp.code_at(secret, clock.now)))

    db.session.expire_all()
    assert not user.two_factor_enabled and user.totp_secret is None
    assert db.session.scalar(db.select(db.func.count()).select_from(RecoveryCode)) == 0

    codes = service.enable(user, secret, totp.code_at(secret, clock.now))

    assert user.two_factor_enabled and len(codes) == 10
    assert user.totp_last_step == totp.step_at(clock.now)  # the confirming code is used up
    [event] = _events("two_factor_enabled")
    assert (event.actor, event.merchant_id) == (user.email, user.merchant_id)


def test_turning_on_ends_the_other_sessions(user: User, clock: Clock) -> None:
    epoch = user.session_epoch

    turn_on(user, clock)

    assert user.session_epoch == epoch + 1


def test_the_current_code_signs_in(member: tuple[User, TwoFactor], clock: Clock) -> None:
    user, two_factor = member

    result = service.verify_sign_in(user, two_factor.code(clock.now))

    assert not result.recovery and result.recovery_codes_left == 10


@pytest.mark.parametrize("offset", [-1, 1], ids=["previous-step", "next-step"])
def test_a_neighbouring_step_is_accepted(user: User, clock: Clock, offset: int) -> None:
    two_factor = turn_on(user, clock)
    clock.now += 60  # the confirmation's step is out of the window

    assert service.verify_sign_in(user, two_factor.code(clock.now + 30 * offset))


def test_a_code_is_refused_the_second_time(member: tuple[User, TwoFactor], clock: Clock) -> None:
    user, two_factor = member
    code = two_factor.code(clock.now)
    service.verify_sign_in(user, code)
    clock.now += 10  # still the same step

    with pytest.raises(service.TwoFactorError, match="already used"):
        service.verify_sign_in(user, code)


def test_an_older_code_is_refused_after_a_newer_one(
    member: tuple[User, TwoFactor], clock: Clock
) -> None:
    user, two_factor = member
    service.verify_sign_in(user, two_factor.code(clock.now + 30))  # the app runs ahead

    with pytest.raises(service.TwoFactorError):
        service.verify_sign_in(user, two_factor.code(clock.now))


def test_the_confirming_code_cannot_sign_in(user: User, clock: Clock) -> None:
    secret = totp.new_secret()
    code = totp.code_at(secret, clock.now)
    service.enable(user, secret, code)

    with pytest.raises(service.TwoFactorError):
        service.verify_sign_in(user, code)


@pytest.mark.parametrize("code", ["", "123", "abcdefgh", "9999999", "abcde-fghjk", "x" * 64])
def test_a_wrong_code_is_refused(member: tuple[User, TwoFactor], clock: Clock, code: str) -> None:
    user, _ = member

    with pytest.raises(service.TwoFactorError, match="not right"):
        service.verify_sign_in(user, code)


def test_a_wrong_six_digit_code_is_refused(member: tuple[User, TwoFactor], clock: Clock) -> None:
    user, two_factor = member
    wrong = _another_code(two_factor.code(clock.now))

    with pytest.raises(service.TwoFactorError):
        service.verify_sign_in(user, wrong)

    db.session.expire_all()
    assert user.totp_last_step == totp.step_at(clock.now - 30)  # nothing recorded


def test_a_recovery_code_works_once(member: tuple[User, TwoFactor], clock: Clock) -> None:
    user, two_factor = member
    code = two_factor.recovery_codes[3]

    result = service.verify_sign_in(user, code.upper().replace("-", " "))

    assert result.recovery and result.recovery_codes_left == 9
    [event] = _events("recovery_code_used")
    assert event.details == {"codes_left": 9}
    with pytest.raises(service.TwoFactorError):
        service.verify_sign_in(user, code)
    assert service.verify_sign_in(user, two_factor.recovery_codes[4]).recovery_codes_left == 8


def test_another_users_recovery_code_does_not_work(
    member: tuple[User, TwoFactor], other_user: User, clock: Clock
) -> None:
    user, two_factor = member
    turn_on(other_user, clock)

    with pytest.raises(service.TwoFactorError):
        service.verify_sign_in(other_user, two_factor.recovery_codes[0])


def test_new_recovery_codes_replace_the_old(member: tuple[User, TwoFactor]) -> None:
    user, two_factor = member

    fresh = service.regenerate_recovery_codes(user)

    assert not set(fresh) & set(two_factor.recovery_codes)
    for old in two_factor.recovery_codes:
        with pytest.raises(service.TwoFactorError):
            service.verify_sign_in(user, old)
    assert service.verify_sign_in(user, fresh[0]).recovery
    assert len(_events("recovery_codes_regenerated")) == 1


def test_codes_and_secret_are_not_stored_in_clear(member: tuple[User, TwoFactor]) -> None:
    user, two_factor = member
    stored = [
        value
        for row in db.session.execute(db.select(RecoveryCode.__table__))
        for value in row
        if isinstance(value, str)
    ]
    audit = [repr(row) for row in db.session.execute(db.select(AuditEvent.__table__))]

    assert len(stored) == 10 and all(len(value) == 64 for value in stored)
    for code in two_factor.recovery_codes:
        bare = code.replace("-", "")
        assert not any(code in value or bare in value for value in stored + audit)
    assert not any(two_factor.secret in row for row in audit)


def test_turning_off_forgets_the_secret_and_the_codes(member: tuple[User, TwoFactor]) -> None:
    user, _ = member

    service.disable(user)

    db.session.expire_all()
    assert (user.totp_secret, user.totp_enabled_at, user.totp_last_step) == (None, None, None)
    assert db.session.scalar(db.select(db.func.count()).select_from(RecoveryCode)) == 0
    assert len(_events("two_factor_disabled")) == 1


def test_requiring_needs_the_owners_own_second_factor(user: User, clock: Clock) -> None:
    owner = accounts.membership_of(user.merchant_id, user.id)

    with pytest.raises(service.TwoFactorError, match="your own account first"):
        service.set_requirement(owner, True)

    db.session.expire_all()
    assert not user.merchant.require_two_factor
    turn_on(user, clock)
    assert service.set_requirement(owner, True)
    assert user.merchant.require_two_factor
    assert not service.set_requirement(owner, True)  # no change, no second event
    assert len(_events("two_factor_required")) == 1


def test_a_member_cannot_turn_off_while_a_store_requires_it(user: User, clock: Clock) -> None:
    turn_on(user, clock)
    service.set_requirement(accounts.membership_of(user.merchant_id, user.id), True)
    member = accounts.add_member(user.email, "dev@shop.test", "developer", PASSWORD).user
    turn_on(member, clock)

    with pytest.raises(service.TwoFactorError, match="Shop One requires"):
        service.disable(member)

    db.session.expire_all()
    assert member.two_factor_enabled


def test_events_go_to_every_store_of_the_member(user: User, other_user: User, clock: Clock) -> None:
    accounts.add_member(other_user.email, user.email, "viewer")
    db.session.refresh(user)

    turn_on(user, clock)

    stores = {event.merchant_id for event in _events("two_factor_enabled")}
    assert stores == {user.merchant_id, other_user.merchant_id}
