"""The pure part: codes per time step, drift, recovery codes and their keyed hashes, the QR."""

from __future__ import annotations

import pyotp
import pytest

from portal.twofactor import totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_800_000_000.0


def test_the_code_is_pyotps_for_the_time_step() -> None:
    assert totp.code_at(SECRET, NOW) == pyotp.TOTP(SECRET).at(NOW)
    assert totp.step_at(NOW) == NOW // 30


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_the_steps_before_and_after_are_accepted(offset: int) -> None:
    code = totp.code_at(SECRET, NOW + 30 * offset)

    assert totp.matching_step(SECRET, code, NOW, None) == totp.step_at(NOW) + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_codes_further_away_are_refused(offset: int) -> None:
    code = totp.code_at(SECRET, NOW + 30 * offset)
    assert code not in {totp.code_at(SECRET, NOW + 30 * near) for near in (-1, 0, 1)}

    assert totp.matching_step(SECRET, code, NOW, None) is None


def test_a_step_not_later_than_the_last_used_is_refused() -> None:
    step = totp.step_at(NOW)
    code = totp.code_at(SECRET, NOW)

    assert totp.matching_step(SECRET, code, NOW, step - 1) == step
    assert totp.matching_step(SECRET, code, NOW, step) is None
    assert totp.matching_step(SECRET, code, NOW, step + 1) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5a"])
def test_what_is_not_six_digits_is_no_code(code: str) -> None:
    assert totp.matching_step(SECRET, totp.normalize(code), NOW, None) is None


def test_ten_recovery_codes_of_fifty_bits_all_different() -> None:
    codes = totp.new_recovery_codes()

    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert len(code) == 11 and code[5] == "-"
        assert set(code.replace("-", "")) <= set(totp.RECOVERY_ALPHABET)
    assert len(totp.RECOVERY_ALPHABET) ** totp.RECOVERY_LENGTH >= 2**49


def test_recovery_hashes_need_the_key_and_ignore_how_the_code_is_typed() -> None:
    code = "abcde-fghjk"

    stored = totp.hash_recovery_code(code, b"key one")

    assert stored == totp.hash_recovery_code(" ABCDE FGHJK ", b"key one")
    assert stored != totp.hash_recovery_code(code, b"key two")
    assert code.replace("-", "") not in stored and len(stored) == 64


def test_the_qr_code_is_an_inline_svg_with_a_name() -> None:
    uri = totp.provisioning_uri(SECRET, "owner@shop.test")

    svg = totp.qr_svg(uri, "QR <code>")

    assert uri.startswith("otpauth://totp/") and f"secret={SECRET}" in uri
    assert svg.startswith('<svg role="img" aria-label="QR &lt;code&gt;"')
    assert "<script" not in svg and "<image" not in svg


def test_the_secret_is_grouped_by_four() -> None:
    assert totp.grouped(SECRET) == "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP"
