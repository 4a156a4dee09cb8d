import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.keys.networks import IpRangeError, ip_allowed, normalize_ip_range


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("  203.0.113.0/24\n", "203.0.113.0/24"),
        ("203.0.113.7", "203.0.113.7/32"),
        ("203.0.113.7/32", "203.0.113.7/32"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("10.0.0.0/255.0.0.0", "10.0.0.0/8"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:0DB8:0000::/48", "2001:db8::/48"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("::/0", "::/0"),
    ],
)
def test_normalize_accepts(value, normalized):
    assert normalize_ip_range(value) == normalized
    assert normalize_ip_range(normalized) == normalized


@pytest.mark.parametrize(
    ("value", "suggestion"),
    [
        ("10.0.0.1/8", "10.0.0.0/8"),
        ("203.0.113.7/24", "203.0.113.0/24"),
        ("2001:db8::1/32", "2001:db8::/32"),
    ],
)
def test_host_bits_set_suggests_the_network(value, suggestion):
    with pytest.raises(IpRangeError) as raised:
        normalize_ip_range(value)

    assert str(raised.value) == f'"{value}" has host bits set; did you mean {suggestion}?'


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "localhost",
        "10.0.0",
        "256.0.0.0/8",
        "10.0.0.0/33",
        "2001:db8::/129",
        "10.0.0.0/",
        "10.0.0.0 /8",
        "010.0.0.0/8",
        "10.0.0.0-10.0.0.255",
        "fe80::1%eth0",
        "*",
    ],
)
def test_normalize_rejects_garbage_with_an_example(value):
    with pytest.raises(IpRangeError, match=r"e\.g\. 203\.0\.113\.0/24"):
        normalize_ip_range(value)


def test_ip_range_error_is_a_value_error():
    assert issubclass(IpRangeError, ValueError)


OFFICE = ["203.0.113.0/24", "2001:db8::/32"]


@pytest.mark.parametrize(
    ("ip", "ranges", "expected"),
    [
        pytest.param("203.0.113.7", OFFICE, True, id="inside-v4"),
        pytest.param("203.0.113.0", OFFICE, True, id="network-address"),
        pytest.param("203.0.113.255", OFFICE, True, id="last-address"),
        pytest.param("203.0.114.1", OFFICE, False, id="outside-v4"),
        pytest.param("::ffff:203.0.113.7", OFFICE, True, id="mapped-v6-inside"),
        pytest.param("::ffff:198.51.100.1", OFFICE, False, id="mapped-v6-outside"),
        pytest.param("2001:db8:1::5", OFFICE, True, id="inside-v6"),
        pytest.param("2001:db9::1", OFFICE, False, id="outside-v6"),
        pytest.param("198.51.100.9", ["198.51.100.9/32"], True, id="single-address"),
        pytest.param("198.51.100.10", ["198.51.100.9/32"], False, id="next-address"),
        pytest.param("198.51.100.10", [], True, id="empty-ranges-allow-all"),
        pytest.param(None, [], True, id="empty-ranges-allow-unknown"),
        pytest.param(None, OFFICE, False, id="no-ip"),
        pytest.param("", OFFICE, False, id="empty-ip"),
        pytest.param("not-an-ip", OFFICE, False, id="garbage-ip"),
        pytest.param("203.0.113.7:5000", OFFICE, False, id="ip-with-port"),
        pytest.param("203.0.113.7", ["garbage", "203.0.113.0/24"], True, id="skips-bad-range"),
        pytest.param("203.0.113.7", ["garbage"], False, id="only-bad-ranges"),
    ],
)
def test_ip_allowed(ip, ranges, expected):
    assert ip_allowed(ip, ranges) is expected


def networks_of(version: int, max_prefix: int) -> st.SearchStrategy:
    return st.builds(
        lambda address, prefix: ipaddress.ip_network((address, prefix), strict=False),
        st.ip_addresses(v=version),
        st.integers(0, max_prefix),
    )


networks = networks_of(4, 32) | networks_of(6, 128)


@given(networks, st.data())
def test_every_address_inside_a_network_is_allowed(network, data):
    offset = data.draw(st.integers(0, network.num_addresses - 1), label="offset")
    address = network.network_address + offset
    allowed = [normalize_ip_range(network.compressed)]

    assert ip_allowed(str(address), allowed)
    if address.version == 4:
        assert ip_allowed(f"::ffff:{address}", allowed)


@given(networks, st.data())
def test_an_address_is_allowed_exactly_when_inside_the_network(network, data):
    address = data.draw(st.ip_addresses(v=network.version), label="address")
    allowed = [normalize_ip_range(network.compressed)]

    assert ip_allowed(str(address), allowed) is (address in network)


@given(st.text())
def test_ip_allowed_never_raises(ip):
    assert ip_allowed(ip, OFFICE) in (True, False)
