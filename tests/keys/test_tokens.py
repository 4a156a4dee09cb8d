import hashlib
import hmac
import re
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.keys.tokens import (
    BASE62,
    CHECKSUM_LENGTH,
    KEY_TYPES,
    MODES,
    RANDOM_LENGTH,
    TYPE_PREFIX,
    ParsedToken,
    checksum,
    generate_token,
    hash_token,
    mask_token,
    parse_token,
    token_last4,
    token_prefix,
)

TOKEN_FORMAT = re.compile(r"(pk|sk)_(live|test)_[0-9A-Za-z]{32}[0-9A-Za-z]{6}")
KINDS = [(key_type, mode) for key_type in KEY_TYPES for mode in MODES]
PEPPER = b"pepper-one"

RANDOM_PART = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
VALID = f"sk_live_{RANDOM_PART}{checksum(RANDOM_PART)}"

random_parts = st.text(alphabet=BASE62, min_size=RANDOM_LENGTH, max_size=RANDOM_LENGTH)
kinds = st.sampled_from(KINDS)


def build(key_type: str, mode: str, random_part: str) -> str:
    return f"{TYPE_PREFIX[key_type]}_{mode}_{random_part}{checksum(random_part)}"


def from_base62(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + BASE62.index(char)
    return value


@pytest.mark.parametrize(
    ("key_type", "mode", "prefix"),
    [
        ("publishable", "live", "pk_live_"),
        ("publishable", "test", "pk_test_"),
        ("secret", "live", "sk_live_"),
        ("secret", "test", "sk_test_"),
    ],
)
def test_the_prefix_says_what_the_key_is(key_type, mode, prefix):
    token = generate_token(key_type, mode)

    assert TOKEN_FORMAT.fullmatch(token)
    assert len(token) == 46
    assert token_prefix(token) == prefix
    assert parse_token(token) == ParsedToken(key_type, mode, token[8:40], token[40:])
    assert parse_token(token).prefix == prefix


def test_mode_defaults_to_live():
    assert generate_token("secret").startswith("sk_live_")


def test_generated_keys_are_unique():
    assert len({generate_token("secret") for _ in range(200)}) == 200


@pytest.mark.parametrize(("key_type", "mode"), [("admin", "live"), ("secret", "prod"), ("", "")])
def test_generate_rejects_unknown_type_or_mode(key_type, mode):
    with pytest.raises(ValueError, match="Unknown"):
        generate_token(key_type, mode)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("sk_live_", id="prefix-only"),
        pytest.param("xk_live_" + VALID[8:], id="unknown-type-prefix"),
        pytest.param("sk_prod_" + VALID[8:], id="unknown-mode"),
        pytest.param("SK_LIVE_" + VALID[8:], id="upper-case-prefix"),
        pytest.param("sk-live-" + VALID[8:], id="dashes"),
        pytest.param(VALID[:-1], id="too-short"),
        pytest.param(VALID + "0", id="too-long"),
        pytest.param(" " + VALID[:-1], id="leading-space"),
        pytest.param(VALID[:20] + "-" + VALID[21:], id="invalid-char-in-random"),
        pytest.param(VALID[:20] + "é" + VALID[21:], id="non-ascii-char"),
        pytest.param(VALID[:-1] + "_", id="invalid-char-in-checksum"),
        pytest.param(VALID[:-6] + "000000", id="bad-checksum"),
        pytest.param(VALID[:8] + "V" + VALID[9:], id="mistyped-random"),
    ],
)
def test_parse_rejects_malformed_keys(token):
    assert parse_token(token) is None


@pytest.mark.parametrize("token", [None, 46, b"sk_live_" + VALID[8:].encode(), [VALID]])
def test_parse_rejects_non_strings(token):
    assert parse_token(token) is None


def test_the_valid_fixture_parses():
    assert parse_token(VALID) == ParsedToken("secret", "live", RANDOM_PART, checksum(RANDOM_PART))


@given(kinds, random_parts)
def test_checksum_is_the_crc32_of_the_random_part_in_six_base62_chars(kind, random_part):
    value = checksum(random_part)

    assert len(value) == CHECKSUM_LENGTH
    assert set(value) <= set(BASE62)
    assert from_base62(value) == zlib.crc32(random_part.encode("ascii"))
    assert parse_token(build(*kind, random_part)) is not None


@given(st.text(alphabet=BASE62, max_size=100))
def test_checksum_is_always_six_base62_chars(random_part):
    value = checksum(random_part)

    assert len(value) == CHECKSUM_LENGTH
    assert set(value) <= set(BASE62)


@given(kinds, random_parts, st.data())
def test_any_single_typo_after_the_prefix_is_rejected(kind, random_part, data):
    token = build(*kind, random_part)
    position = data.draw(st.integers(min_value=8, max_value=len(token) - 1), label="position")
    replacement = data.draw(
        st.sampled_from(BASE62).filter(lambda char: char != token[position]), label="replacement"
    )

    assert parse_token(token[:position] + replacement + token[position + 1 :]) is None


@given(kinds, random_parts, st.data())
def test_a_typo_in_the_prefix_never_yields_the_same_key(kind, random_part, data):
    token = build(*kind, random_part)
    position = data.draw(st.integers(min_value=0, max_value=7), label="position")
    replacement = data.draw(
        st.characters().filter(lambda char: char != token[position]), label="replacement"
    )

    parsed = parse_token(token[:position] + replacement + token[position + 1 :])

    assert parsed is None or (parsed.key_type, parsed.mode) != kind


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none()))
def test_parse_never_raises(value):
    parsed = parse_token(value)

    assert parsed is None or isinstance(parsed, ParsedToken)


def test_hash_is_the_hex_hmac_sha256_of_the_key_under_the_pepper():
    expected = hmac.new(PEPPER, VALID.encode(), hashlib.sha256).hexdigest()

    assert hash_token(VALID, PEPPER) == expected
    assert re.fullmatch(r"[0-9a-f]{64}", hash_token(VALID, PEPPER))


def test_hash_is_deterministic():
    assert hash_token(VALID, PEPPER) == hash_token(VALID, PEPPER)


def test_hash_differs_per_pepper():
    assert hash_token(VALID, PEPPER) != hash_token(VALID, b"pepper-two")


def test_hash_differs_per_key():
    other = generate_token("secret")

    assert hash_token(VALID, PEPPER) != hash_token(other, PEPPER)


def test_hash_does_not_contain_the_key():
    assert RANDOM_PART.lower() not in hash_token(VALID, PEPPER)


@pytest.mark.parametrize(
    ("prefix", "last4", "masked"),
    [
        ("sk_live_", "a1B2", "sk_live_\u2026a1B2"),
        ("pk_test_", "0000", "pk_test_\u20260000"),
    ],
)
def test_mask(prefix, last4, masked):
    assert mask_token(prefix, last4) == masked


@pytest.mark.parametrize(("key_type", "mode"), KINDS)
def test_masked_key_shows_prefix_and_last_four_only(key_type, mode):
    token = generate_token(key_type, mode)

    masked = mask_token(token_prefix(token), token_last4(token))

    assert masked == f"{token[:8]}\u2026{token[-4:]}"
    assert token[8:42] not in masked
    assert len(token_last4(token)) == 4
