import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from portal.keys.origins import (
    OriginError,
    is_wildcard,
    normalize_origin,
    origin_allowed,
    parse_request_origin,
)


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("HTTPS://Shop.Example.COM", "https://shop.example.com"),
        ("  https://shop.example.com \n", "https://shop.example.com"),
        ("https://shop.example.com/", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("https://shop.example.com:443/", "https://shop.example.com"),
        ("http://shop.example.com:80", "http://shop.example.com"),
        ("http://shop.example.com:443", "http://shop.example.com:443"),
        ("https://shop.example.com:80", "https://shop.example.com:80"),
        ("https://shop.example.com:8443", "https://shop.example.com:8443"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://[::1]:80", "http://[::1]"),
        ("https://[2001:DB8:0:0::1]", "https://[2001:db8::1]"),
        ("https://bücher.de", "https://xn--bcher-kva.de"),
        ("https://BÜCHER.example", "https://xn--bcher-kva.example"),
        ("https://xn--bcher-kva.de", "https://xn--bcher-kva.de"),
        ("https://my-shop.example.co.uk", "https://my-shop.example.co.uk"),
        ("https://*.example.com", "https://*.example.com"),
        ("HTTPS://*.Example.COM:443/", "https://*.example.com"),
        ("https://*.example.com:8443", "https://*.example.com:8443"),
        ("https://*.shop.example.com", "https://*.shop.example.com"),
        ("https://*.bücher.de", "https://*.xn--bcher-kva.de"),
        ("https://a.b", "https://a.b"),
        ("https://" + "a" * 63 + ".com", "https://" + "a" * 63 + ".com"),
    ],
)
def test_normalize_accepts(value, normalized):
    assert normalize_origin(value) == normalized
    assert normalize_origin(normalized) == normalized


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("shop.example.com", id="no-scheme"),
        pytest.param("//shop.example.com", id="scheme-relative"),
        pytest.param("ftp://shop.example.com", id="ftp"),
        pytest.param("ws://shop.example.com", id="websocket"),
        pytest.param("javascript://shop.example.com", id="javascript"),
        pytest.param("https:shop.example.com", id="no-slashes"),
        pytest.param("https://", id="no-host"),
        pytest.param("https:///", id="only-slash"),
        pytest.param("https://shop.example.com/checkout", id="path"),
        pytest.param("https://shop.example.com//", id="two-slashes"),
        pytest.param("https://shop.example.com?a=1", id="query"),
        pytest.param("https://shop.example.com/?a=1", id="slash-query"),
        pytest.param("https://shop.example.com#top", id="fragment"),
        pytest.param("https://user@shop.example.com", id="userinfo"),
        pytest.param("https://user:pw@shop.example.com", id="userinfo-password"),
        pytest.param("https://shop.example.com\\evil", id="backslash"),
        pytest.param("https://shop .example.com", id="space-inside"),
        pytest.param("https://shop.exa\tmple.com", id="tab-inside"),
        pytest.param("https://shop_1.example.com", id="underscore"),
        pytest.param("https://-shop.example.com", id="leading-hyphen"),
        pytest.param("https://shop-.example.com", id="trailing-hyphen"),
        pytest.param("https://shop..example.com", id="empty-label"),
        pytest.param("https://.example.com", id="leading-dot"),
        pytest.param("https://example.com.", id="trailing-dot"),
        pytest.param("https://" + "a" * 64 + ".com", id="label-too-long"),
        pytest.param("https://" + ".".join(["abcdefghi"] * 26), id="host-too-long"),
        pytest.param("https://xn--zz.com", id="bad-punycode"),
        pytest.param("https://shop.example.123", id="numeric-tld"),
        pytest.param("https://256.1.1.1", id="bad-ipv4"),
        pytest.param("https://shop.example.com:0", id="port-0"),
        pytest.param("https://shop.example.com:65536", id="port-65536"),
        pytest.param("https://shop.example.com:abc", id="port-abc"),
        pytest.param("https://shop.example.com:", id="port-empty"),
        pytest.param("https://shop.example.com:-1", id="port-negative"),
        pytest.param("https://shop.example.com:+443", id="port-plus"),
        pytest.param("https://shop.example.com:²", id="port-superscript"),
        pytest.param("https://shop.example.com:8080:1", id="two-ports"),
        pytest.param("https://::1", id="ipv6-unbracketed"),
        pytest.param("https://[::1", id="ipv6-unclosed"),
        pytest.param("https://[::1]x", id="ipv6-junk"),
        pytest.param("https://[fe80::1%25eth0]", id="ipv6-zone"),
        pytest.param("https://[example.com]", id="brackets-around-name"),
        pytest.param("*.example.com", id="wildcard-no-scheme"),
        pytest.param("https://*", id="bare-wildcard"),
        pytest.param("https://*.com", id="wildcard-tld"),
        pytest.param("https://*.*.example.com", id="double-wildcard"),
        pytest.param("https://a.*.example.com", id="inner-wildcard"),
        pytest.param("https://*a.example.com", id="partial-wildcard"),
        pytest.param("https://shop*.example.com", id="suffix-star"),
        pytest.param("https://*.1.2.3.4", id="wildcard-ip"),
        pytest.param("https://*.example.com/x", id="wildcard-path"),
    ],
)
def test_normalize_rejects(value):
    with pytest.raises(OriginError):
        normalize_origin(value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ftp://shop.example.com", "http or https"),
        ("https://shop.example.com/checkout", "path"),
        ("https://user@shop.example.com", "User names"),
        ("https://shop.example.com:70000", "1 to 65535"),
        ("https://*.com", "two labels"),
        ("https://a.*.example.com", "leftmost label"),
    ],
)
def test_error_messages_tell_the_merchant_what_to_fix(value, fragment):
    with pytest.raises(OriginError, match=fragment):
        normalize_origin(value)


def test_origin_error_is_a_value_error():
    assert issubclass(OriginError, ValueError)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("https://*.example.com", True),
        ("https://*.example.com:8443", True),
        ("https://shop.example.com", False),
        ("http://[::1]:8080", False),
    ],
)
def test_is_wildcard(pattern, expected):
    assert is_wildcard(pattern) is expected


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (None, None),
        ("", None),
        ("null", None),
        ("https://*.example.com", None),
        ("https://shop.example.com/path", None),
        ("not an origin", None),
        ("https://\ud800.com", None),
        ("https://shop.example.com\x00", None),
        ("https://shop.example.com", "https://shop.example.com"),
        ("HTTPS://SHOP.EXAMPLE.COM", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
    ],
)
def test_parse_request_origin(header, parsed):
    assert parse_request_origin(header) == parsed


SHOP = ["https://shop.example.com"]
WILDCARD = ["https://*.example.com"]


@pytest.mark.parametrize(
    ("header", "allowed", "expected"),
    [
        pytest.param("https://shop.example.com", SHOP, True, id="exact"),
        pytest.param("HTTPS://Shop.Example.com", SHOP, True, id="upper-case-request"),
        pytest.param("https://shop.example.com:443", SHOP, True, id="explicit-default-port"),
        pytest.param("http://shop.example.com", SHOP, False, id="http-vs-https"),
        pytest.param("https://shop.example.com:8443", SHOP, False, id="port-mismatch"),
        pytest.param("https://other.example.com", SHOP, False, id="other-host"),
        pytest.param("https://example.com", SHOP, False, id="parent-domain"),
        pytest.param("https://evil.shop.example.com", SHOP, False, id="exact-has-no-subdomains"),
        pytest.param("null", SHOP, False, id="null"),
        pytest.param(None, SHOP, False, id="missing"),
        pytest.param("https://shop.example.com/x", SHOP, False, id="malformed"),
        pytest.param("https://a.example.com", WILDCARD, True, id="wildcard-subdomain"),
        pytest.param("https://a.b.example.com", WILDCARD, True, id="wildcard-deep-subdomain"),
        pytest.param("https://A.Example.COM", WILDCARD, True, id="wildcard-upper-case"),
        pytest.param("https://example.com", WILDCARD, False, id="wildcard-not-apex"),
        pytest.param(
            "https://shop.example.com.evil.net", WILDCARD, False, id="wildcard-suffix-attack"
        ),
        pytest.param("https://evilexample.com", WILDCARD, False, id="wildcard-no-dot"),
        pytest.param("http://a.example.com", WILDCARD, False, id="wildcard-http-vs-https"),
        pytest.param("https://a.example.com:8443", WILDCARD, False, id="wildcard-port-mismatch"),
        pytest.param(
            "https://a.example.com:8443", ["https://*.example.com:8443"], True, id="wildcard-port"
        ),
        pytest.param(
            "https://a.example.com", ["https://*.example.com:8443"], False, id="wildcard-no-port"
        ),
        pytest.param("https://*.example.com", WILDCARD, False, id="wildcard-as-origin"),
        pytest.param(
            "https://a.example.org",
            ["https://shop.example.com", "https://*.example.org"],
            True,
            id="second-pattern",
        ),
        pytest.param("https://anything.test", [], True, id="empty-allows-any"),
        pytest.param("null", [], True, id="empty-allows-null"),
        pytest.param(None, [], True, id="empty-allows-missing"),
    ],
)
def test_origin_allowed(header, allowed, expected):
    assert origin_allowed(parse_request_origin(header), allowed) is expected


def test_a_raw_wildcard_string_is_never_an_allowed_origin():
    assert origin_allowed("https://*.example.com", WILDCARD) is False


def test_only_host_labels_stand_in_for_the_wildcard():
    # origin_allowed expects parse_request_origin output; even so, junk must not match.
    assert origin_allowed("https://evil.com/.example.com", WILDCARD) is False
    assert origin_allowed("https://u@x.example.com", WILDCARD) is False


labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
hosts = st.lists(labels, min_size=1, max_size=4).map(".".join)


@given(
    st.lists(labels, min_size=0, max_size=3).map(".".join),
    st.sampled_from(["evil.net", "example.com.evil.net", "examplexcom", "com", "example.co"]),
    st.sampled_from(["https", "http"]),
    st.sampled_from(["", ":443", ":8443"]),
)
def test_wildcard_never_matches_a_host_outside_the_domain(prefix, tail, scheme, port):
    host = f"{prefix}.{tail}" if prefix else tail
    assume(not host.endswith(".example.com"))
    origin = parse_request_origin(f"{scheme}://{host}{port}")

    assert not origin_allowed(origin, WILDCARD)


@given(hosts, st.sampled_from(["https", "HTTPS", "http"]), st.sampled_from(["", ":443", ":8443"]))
def test_wildcard_matches_exactly_the_subdomains_with_same_scheme_and_port(host, scheme, port):
    origin = parse_request_origin(f"{scheme}://{host}.example.com{port}")
    expected = scheme.lower() == "https" and port in ("", ":443")

    assert origin is not None
    assert origin_allowed(origin, WILDCARD) is expected


unicode_labels = st.text(
    alphabet=st.characters(min_codepoint=0xC0, max_codepoint=0x24F, categories=["Ll", "Lu"]),
    min_size=1,
    max_size=10,
)
ascii_inputs = st.builds(
    lambda scheme, wildcard, host, tld, port, slash, spaces: (
        f"{spaces}{scheme}://{wildcard}{host}.{tld}{port}{slash}{spaces}"
    ),
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    st.sampled_from(["", "*."]),
    st.one_of(hosts, hosts.map(str.upper)),
    st.sampled_from(["com", "example", "CO", "xn--bcher-kva"]),
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda port: f":{port}")),
    st.sampled_from(["", "/"]),
    st.sampled_from(["", " ", "\t"]),
)
idn_inputs = st.builds(
    lambda scheme, host: f"{scheme}://{host}.example",
    st.sampled_from(["http", "https"]),
    st.lists(unicode_labels, min_size=1, max_size=3).map(".".join),
)
ipv6_inputs = st.builds(
    lambda scheme, address, port: f"{scheme}://[{address}]{port}",
    st.sampled_from(["http", "https"]),
    st.ip_addresses(v=6).map(str),
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda port: f":{port}")),
)


@given(st.one_of(ascii_inputs, idn_inputs, ipv6_inputs))
def test_normalize_accepts_valid_pieces_and_is_idempotent(value):
    normalized = normalize_origin(value)

    assert normalize_origin(normalized) == normalized
    assert normalized == normalized.strip().lower()
    assert normalized.isascii()


@given(st.text())
def test_parse_request_origin_never_raises_on_text(header):
    parsed = parse_request_origin(header)

    assert parsed is None or normalize_origin(parsed) == parsed


@given(
    st.builds(
        lambda scheme, body: scheme + body,
        st.sampled_from(["https://", "http://", "HTTP://", ""]),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    )
)
def test_parse_request_origin_never_raises_on_origin_like_text(header):
    parsed = parse_request_origin(header)

    assert parsed is None or not is_wildcard(parsed)
