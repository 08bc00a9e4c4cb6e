"""The endpoint policy's table (SPEC §7), one spelling at a time, with no network: names are
resolved by an injected resolver, never by DNS.

Before the fix (issue 13 item 1) there was no policy at all: `check_endpoint_url` accepted
every one of these.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from s3dest.s3.egress import (
    AllowList,
    EgressPolicy,
    EndpointRefused,
    EndpointUnresolvable,
    Route,
    parse_address,
)

FAKE_DNS: dict[str, list[str]] = {
    "loopback.example": ["127.0.0.1"],
    "private.example": ["10.1.2.3"],
    "mixed.example": ["93.184.215.14", "192.168.0.7"],
    "metadata-alias.example": ["169.254.169.254"],
    "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "v6loop.example": ["::1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
}


def fake_resolver(host: str, port: int) -> Sequence[str]:
    try:
        return FAKE_DNS[host]
    except KeyError:
        raise OSError(-2, "Name or service not known") from None


def policy(allowed: str = "") -> EgressPolicy:
    return EgressPolicy.from_setting(allowed, resolver=fake_resolver)


# host as it appears in the URL -> (address it stands for, words the refusal must contain)
REFUSED: list[tuple[str, str, str]] = [
    ("127.0.0.1", "127.0.0.1", "loopback"),
    ("127.1", "127.0.0.1", "loopback"),
    ("127.0.1", "127.0.0.1", "loopback"),
    ("2130706433", "127.0.0.1", "loopback"),
    ("0x7f000001", "127.0.0.1", "loopback"),
    ("0X7F.0.0.1", "127.0.0.1", "loopback"),
    ("0177.0.0.1", "127.0.0.1", "loopback"),
    ("017700000001", "127.0.0.1", "loopback"),
    ("127.0.0.1.", "127.0.0.1", "loopback"),
    ("127.255.255.254", "127.255.255.254", "loopback"),
    ("[::1]", "::1", "loopback"),
    ("0:0:0:0:0:0:0:1", "::1", "loopback"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("::ffff:7f00:1", "::ffff:7f00:1", "IPv4-mapped form of 127.0.0.1"),
    ("::127.0.0.1", "::7f00:1", "IPv4-compatible form of 127.0.0.1"),
    ("::ffff:0:127.0.0.1", "::ffff:0:7f00:1", "IPv4-translated form of 127.0.0.1"),
    ("64:ff9b::127.0.0.1", "64:ff9b::7f00:1", "NAT64 form of 127.0.0.1"),
    ("2002:7f00:1::", "2002:7f00:1::", "6to4 form of 127.0.0.1"),
    ("0.0.0.0", "0.0.0.0", "unspecified"),
    ("0", "0.0.0.0", "unspecified"),
    ("::", "::", "unspecified"),
    ("10.0.0.1", "10.0.0.1", "private address (RFC 1918)"),
    ("012.0.0.1", "10.0.0.1", "private address (RFC 1918)"),
    ("172.16.5.4", "172.16.5.4", "RFC 1918"),
    ("172.31.255.255", "172.31.255.255", "RFC 1918"),
    ("192.168.1.1", "192.168.1.1", "RFC 1918"),
    ("3232235777", "192.168.1.1", "RFC 1918"),
    ("100.64.0.1", "100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "100.127.255.254", "carrier-grade NAT"),
    ("fc00::1", "fc00::1", "unique local"),
    ("fd12:3456:789a::1", "fd12:3456:789a::1", "unique local"),
    ("169.254.1.1", "169.254.1.1", "link-local"),
    ("fe80::1", "fe80::1", "link-local"),
    ("febf::1", "febf::1", "link-local"),
    ("169.254.169.254", "169.254.169.254", "cloud metadata"),
    ("0xa9fea9fe", "169.254.169.254", "cloud metadata"),
    ("2852039166", "169.254.169.254", "cloud metadata"),
    ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "169.254.169.254, a cloud metadata"),
    ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"),
    ("2002:a9fe:a9fe::", "2002:a9fe:a9fe::", "6to4 form of 169.254.169.254"),
    ("fd00:ec2::254", "fd00:ec2::254", "cloud metadata"),
    ("100.100.100.200", "100.100.100.200", "cloud metadata"),
    ("169.254.170.2", "169.254.170.2", "cloud metadata"),
    ("168.63.129.16", "168.63.129.16", "cloud metadata"),
    ("224.0.0.1", "224.0.0.1", "multicast"),
    ("ff02::1", "ff02::1", "multicast"),
    ("255.255.255.255", "255.255.255.255", "broadcast"),
    ("240.0.0.1", "240.0.0.1", "reserved"),
    ("0.1.2.3", "0.1.2.3", "this network"),
    ("192.0.2.10", "192.0.2.10", "documentation"),
    ("198.18.0.1", "198.18.0.1", "benchmarking"),
    ("2001:db8::1", "2001:db8::1", "documentation"),
    ("fec0::1", "fec0::1", "site-local"),
    ("100::1", "100::1", "reserved"),
]


@pytest.mark.parametrize(("host", "address", "words"), REFUSED)
def test_every_spelling_of_a_refused_address_is_refused(
    host: str, address: str, words: str
) -> None:
    with pytest.raises(EndpointRefused) as refused:
        policy().check_endpoint(host, 443)
    assert refused.value.address == address
    assert words in refused.value.reason, refused.value.reason
    assert address in refused.value.reason
    # at connect time too, without a lookup: a literal never reaches a socket
    with pytest.raises(EndpointRefused):
        policy().route(host)


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("loopback.example", "resolves to 127.0.0.1, a loopback address"),
        ("private.example", "resolves to 10.1.2.3, a private address (RFC 1918)"),
        ("mixed.example", "resolves to 192.168.0.7"),  # one bad address is enough
        ("metadata-alias.example", "resolves to 169.254.169.254, a cloud metadata address"),
        ("v6loop.example", "resolves to ::1, a loopback address"),
        ("mapped.example", "IPv4-mapped form of 10.0.0.1"),
        ("localhost", "localhost resolves to 127.0.0.1, a loopback address"),
        ("LOCALHOST.", "localhost resolves to 127.0.0.1"),
        ("s3.localhost", "s3.localhost is a loopback name"),  # unresolvable, still loopback
        ("metadata.google.internal", "cloud metadata name"),
        ("metadata.google.internal.", "cloud metadata name"),
        ("METADATA", "cloud metadata name"),
    ],
)
def test_names_are_judged_by_what_they_resolve_to(host: str, words: str) -> None:
    with pytest.raises(EndpointRefused) as refused:
        policy().check_endpoint(host, 443)
    assert words in refused.value.reason


def test_an_unresolvable_name_is_refused_naming_dns() -> None:
    with pytest.raises(EndpointUnresolvable) as refused:
        policy().check_endpoint("nosuch.example", 443)
    assert "does not resolve" in refused.value.reason and "DNS" in refused.value.reason


@pytest.mark.parametrize(
    "host",
    [
        "public.example",
        "93.184.215.14",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "[2606:4700:4700::1111]",
        "::ffff:8.8.8.8",
    ],
)
def test_public_hosts_are_allowed(host: str) -> None:
    policy().check_endpoint(host, 443)


def test_all_but_aws_and_the_allow_list_go_through_the_proxy() -> None:
    assert policy().route("public.example") is Route.PROXY
    # a literal cannot be re-resolved, but its answer could be a redirect (reqwest follows
    # a 303), so it is checked by the proxy too
    assert policy().route("8.8.8.8") is Route.PROXY
    assert policy("8.8.8.8").route("8.8.8.8") is Route.DIRECT
    # the proxy's own check, on the exact address it is about to connect to
    policy().check_address("public.example", "93.184.215.14")
    with pytest.raises(EndpointRefused, match=r"resolves to 127\.0\.0\.1, a loopback"):
        policy().check_address("public.example", "127.0.0.1")


@pytest.mark.parametrize(
    "host",
    [
        "s3.amazonaws.com",
        "s3.us-west-2.amazonaws.com",
        "bucket.s3.eu-central-1.amazonaws.com",
        "s3-fips.us-gov-west-1.amazonaws.com",
        "s3-us-west-2.amazonaws.com",
        "s3.dualstack.ap-south-1.amazonaws.com",
        "s3.cn-north-1.amazonaws.com.cn",
        "s3.us-east-1.api.aws",
        "bucket.vpce-0a1b2c3d-4e5f.s3.us-east-1.vpce.amazonaws.com",
        "b--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com",
        "S3.AMAZONAWS.COM.",
    ],
)
def test_aws_s3_endpoints_are_always_allowed_without_a_lookup(host: str) -> None:
    policy().check_endpoint(host, 443)  # fake_resolver would raise for every one of them
    assert policy().route(host) is Route.DIRECT


@pytest.mark.parametrize(
    "host",
    [
        "ec2-10-0-0-5.compute-1.amazonaws.com",  # resolves to the private address in a VPC
        "s3.amazonaws.com.evil.example",
        "evil-s3.amazonaws.com.example",
        "amazonaws.com",
        "bucket.s3-website-us-east-1.amazonaws.com",  # serves the bucket's redirect rules
        "bucket.s3-website.eu-west-1.amazonaws.com",
    ],
)
def test_other_names_under_or_like_aws_get_the_ordinary_policy(host: str) -> None:
    with pytest.raises(EndpointUnresolvable):
        policy().check_endpoint(host, 443)
    assert policy().route(host) is Route.PROXY


def test_the_allow_list_admits_exactly_what_it_lists() -> None:
    allowed = policy("127.0.0.2, minio.internal, .lab.internal, 10.9.0.0/16, [::1]")
    for host in ("127.0.0.2", "minio.internal", "a.lab.internal", "lab.internal", "10.9.200.1"):
        allowed.check_endpoint(host, 9000)
        assert allowed.route(host) is Route.DIRECT
    allowed.check_endpoint("::1", 9000)
    allowed.check_endpoint("::ffff:127.0.0.2", 9000)  # the same socket as 127.0.0.2
    for host in ("127.0.0.1", "127.0.0.3", "10.10.0.1", "minio2.internal", "xlab.internal"):
        with pytest.raises(EndpointRefused):
            allowed.check_endpoint(host, 9000)
    # names that resolve into a listed CIDR pass, through the proxy
    FAKE_DNS["inside.example"] = ["10.9.3.4"]
    try:
        allowed.check_endpoint("inside.example", 9000)
        assert allowed.route("inside.example") is Route.PROXY
    finally:
        del FAKE_DNS["inside.example"]


def test_loopback_names_pass_only_when_loopback_itself_is_allowed() -> None:
    loopback = policy("127.0.0.0/8, ::1")
    loopback.check_endpoint("localhost", 9000)
    assert loopback.route("localhost") is Route.PROXY  # a name: checked on connecting
    with pytest.raises(EndpointRefused, match="loopback name"):
        policy("10.0.0.0/8").route("s3.localhost")
    with pytest.raises(EndpointRefused, match="resolves to ::1"):
        policy("127.0.0.0/8").check_endpoint("localhost", 9000)  # ::1 is not listed


def test_a_cidr_never_admits_a_metadata_address_only_the_exact_address_does() -> None:
    wide = policy("169.254.0.0/16, 100.64.0.0/10, fd00::/8")
    wide.check_endpoint("169.254.1.1", 80)
    for host in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254"):
        with pytest.raises(EndpointRefused, match="metadata"):
            wide.check_endpoint(host, 80)
    policy("169.254.169.254").check_endpoint("169.254.169.254", 80)
    policy("metadata.google.internal").check_endpoint("metadata.google.internal", 80)


@pytest.mark.parametrize("entry", ["not a host", "10.0.0.0/33", "http://x", "a,,b/c"])
def test_a_bad_allow_list_entry_is_an_error_naming_the_setting(entry: str) -> None:
    with pytest.raises(ValueError, match="S3DEST_ALLOWED_ENDPOINT_HOSTS"):
        AllowList.parse(entry)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("127.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("example.com", None),
        ("1.2.3.08", None),  # not an address; the URL parser refuses it too
        ("deadbeef", None),  # a name, although it is hex
    ],
)
def test_address_spellings_are_read_as_the_url_parser_reads_them(
    spelling: str, canonical: str | None
) -> None:
    parsed = parse_address(spelling)
    assert (str(parsed) if parsed else None) == canonical
