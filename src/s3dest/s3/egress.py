"""Which endpoints s3dest may contact on a tenant's behalf (SPEC §7 "Endpoints").

A tenant chooses `endpointUrl`, and s3dest then sends signed PUTs there with a body and a
path the tenant controls, and shows parts of the reply. Without a policy that is a way into
the operator's own network: loopback services, private ranges, cloud metadata. So an
endpoint is refused when its host is, or resolves to, an address that is not public:

* every spelling of an address is normalised first, the way the HTTP client will read it
  (`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`, a trailing dot, `[::ffff:127.0.0.1]`);
  the WHATWG URL parser the Rust client uses accepts the same short forms as inet_aton;
* IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, NAT64) are judged by
  the address they carry;
* a name is resolved and every address it gives must pass; `localhost` and `*.localhost`
  are loopback names whatever the resolver says (RFC 6761);
* cloud metadata addresses and names are refused even inside an allow-listed CIDR: only
  listing the exact address or name admits one.

`S3DEST_ALLOWED_ENDPOINT_HOSTS` widens the policy (host names, `.suffix` for a domain and
its subdomains, addresses, CIDRs). AWS's own S3 endpoints (no endpointUrl, or an S3 host
under amazonaws.com, amazonaws.com.cn or api.aws) are always allowed.

The same `EgressPolicy` is asked at save time (`check_endpoint`, which resolves) and at
connect time (`route` decides whether a connection may go direct or must go through the
checking proxy in `s3.egress_proxy`, which asks `check_address` about the exact address it
connects to).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from s3dest.errors import InvalidInput
from s3dest.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: host, port -> the addresses the host resolves to (text; no scope ids). Raises OSError.
Resolver = Callable[[str, int], Sequence[str]]

SETTING = "S3DEST_ALLOWED_ENDPOINT_HOSTS"

_AWS_SUFFIXES = ("amazonaws.com", "amazonaws.com.cn", "api.aws")
# An S3 service label: s3, s3-fips, s3-accesspoint, s3-us-west-2, s3express-…, s3.dualstack.
# Other names under amazonaws.com are not S3 and not always public: EC2's public DNS names
# (ec2-10-0-0-5.compute-1.amazonaws.com) resolve to the instance's private address from
# inside its VPC, so they get the ordinary policy.
_S3_LABEL = re.compile(r"s3(?:-[a-z0-9-]+|express[a-z0-9-]*)?")
_NAME = re.compile(r"(?=.{1,253}$)(?!-)[a-z0-9_-]{1,63}(?:\.(?!-)[a-z0-9_-]{1,63})*")
# Only these characters can make an inet_aton-style IPv4 spelling (decimal, octal, hex).
_NUMERIC_V4 = re.compile(r"[0-9a-fx.]+")

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean IMDS
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS pod identity agent
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity agent over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (OCI) legacy metadata
        "168.63.129.16",  # Azure WireServer: a public address, host-only service
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)

# The ranges refused by name, checked in order (the first that contains an address names
# it); anything else that `ipaddress` does not call global is "not a public address".
_RANGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("the unspecified address", ("0.0.0.0/32", "::/128")),
    ("a loopback address", ("127.0.0.0/8", "::1/128")),
    ("a link-local address", ("169.254.0.0/16", "fe80::/10")),
    ("a private address (RFC 1918)", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    ("a shared carrier-grade NAT address (100.64.0.0/10)", ("100.64.0.0/10",)),
    ("a unique local address (fc00::/7)", ("fc00::/7",)),
    ("a site-local address (fec0::/10)", ("fec0::/10",)),
    ("a multicast address", ("224.0.0.0/4", "ff00::/8")),
    ("the broadcast address", ("255.255.255.255/32",)),
    ("a 'this network' address (0.0.0.0/8)", ("0.0.0.0/8",)),
    ("a reserved address", ("240.0.0.0/4", "::/8", "100::/64", "64:ff9b:1::/48")),
    (
        "a documentation or benchmarking address",
        ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15", "2001:db8::/32"),
    ),
    ("an IETF protocol address", ("192.0.0.0/24", "192.88.99.0/24", "2001::/23")),
)
_RANGE_TABLE: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = tuple(
    (rule, tuple(ipaddress.ip_network(n) for n in nets)) for rule, nets in _RANGES
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT, RFC 2765
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class Route(Enum):
    """How a connection to an endpoint is made."""

    DIRECT = "direct"  # AWS's S3 endpoints and what the operator allow-listed
    PROXY = "proxy"  # anything else: checked by the egress proxy on every connection


class EndpointRefused(Exception):
    """The endpoint may not be contacted; `reason` is the sentence to show."""

    def __init__(self, host: str, reason: str, *, address: str | None = None) -> None:
        super().__init__(reason)
        self.host = host
        self.reason = reason
        self.address = address


class EndpointUnresolvable(EndpointRefused):
    """The endpoint's name does not resolve (so nothing could be checked)."""


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]).split("%", 1)[0], None)
    return list(seen)


def normalise_host(host: str) -> str:
    """Lower case, without brackets and without one trailing dot (`localhost.` is
    `localhost`, `127.0.0.1.` is 127.0.0.1 to the URL parser)."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    return host


def parse_address(host: str) -> IPAddress | None:
    """The address a host spelling stands for, or None when it is a name.

    Besides the canonical forms, the short and numeric IPv4 forms that inet_aton (and
    the WHATWG URL parser, and glibc's getaddrinfo) accept: `127.1`, `2130706433`,
    `0x7f000001`, `0177.0.0.1`.
    """
    host = normalise_host(host)
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_V4.fullmatch(host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_aws_host(host: str) -> bool:
    """An S3 API endpoint of AWS itself: a host under AWS's own zones with an S3 label.

    Not the website endpoints (s3-website-…): they serve a bucket's redirect rules, which
    a tenant writes, and the HTTP client follows some redirects (see `Route`)."""
    host = normalise_host(host)
    for suffix in _AWS_SUFFIXES:
        if host.endswith("." + suffix):
            labels = host[: -len(suffix) - 1].split(".")
            if any(label.startswith("s3-website") or label == "website" for label in labels):
                return False
            return any(_S3_LABEL.fullmatch(label) for label in labels)
    return False


def _is_loopback_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def _embedded_v4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 form carries, with the form's name."""
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped form of", address.ipv4_mapped
    if address in _IPV4_TRANSLATED:
        return "an IPv4-translated form of", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64:
        return "a NAT64 form of", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "a 6to4 form of", address.sixtofour
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return "an IPv4-compatible form of", ipaddress.IPv4Address(int(address))
    return None


def range_rule(address: IPAddress) -> str | None:
    """Why an address is not public, by the table alone (no allow-list), or None."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            form, v4 = embedded
            inner = range_rule(v4)
            return f"{form} {v4}, {inner}" if inner else None
    for rule, networks in _RANGE_TABLE:
        if any(address in network for network in networks):
            return rule
    if not address.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class AllowList:
    """What the operator added: exact names, `.suffix` domains, addresses and CIDRs."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> AllowList:
        entries = text.split(",") if isinstance(text, str) else list(text)
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                except ValueError:
                    raise ValueError(f"{SETTING}: {raw.strip()!r} is not a CIDR") from None
                continue
            address = parse_address(entry)
            if address is not None:
                networks.append(ipaddress.ip_network(address))
            elif entry.startswith(".") and _NAME.fullmatch(normalise_host(entry[1:])):
                suffixes.append(normalise_host(entry[1:]))
            elif _NAME.fullmatch(normalise_host(entry)):
                names.add(normalise_host(entry))
            else:
                raise ValueError(
                    f"{SETTING}: {raw.strip()!r} is not a host name, an address or a CIDR "
                    "(entries are separated by commas, e.g. 'minio.internal,10.1.2.0/24')"
                )
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    def admits_name(self, host: str) -> bool:
        host = normalise_host(host)
        return host in self.names or any(
            host == suffix or host.endswith("." + suffix) for suffix in self.suffixes
        )

    def admits_address(self, address: IPAddress) -> bool:
        if address in METADATA_ADDRESSES:
            # Only the exact address admits a metadata address, never a wider CIDR.
            return any(net.num_addresses == 1 and address in net for net in self.networks)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # the same socket destination as the IPv4 form
        return any(address.version == net.version and address in net for net in self.networks)

    def __bool__(self) -> bool:
        return bool(self.names or self.suffixes or self.networks)


@dataclass(frozen=True)
class EgressPolicy:
    """The endpoint policy of this process: the fixed table plus the operator's list."""

    allowed: AllowList = field(default_factory=AllowList)
    resolver: Resolver = field(default=_system_resolver, compare=False, repr=False)

    @classmethod
    def from_setting(cls, text: str, resolver: Resolver | None = None) -> EgressPolicy:
        """The policy for the setting's text; InvalidInput names a bad entry."""
        try:
            allowed = AllowList.parse(text)
        except ValueError as exc:
            raise InvalidInput(str(exc), {SETTING: str(exc)}) from None
        return cls(allowed, resolver or _system_resolver)

    def address_rule(self, address: IPAddress) -> str | None:
        """Why this exact address may not be contacted, or None when it may."""
        if self.allowed.admits_address(address):
            return None
        return range_rule(address)

    def check_address(self, host: str, address_text: str) -> None:
        """Connect time: may a connection for `host` go to this address? (raises)"""
        address = ipaddress.ip_address(address_text.split("%", 1)[0])
        rule = self.address_rule(address)
        if rule is not None:
            verb = "is" if parse_address(host) == address else "resolves to"
            raise EndpointRefused(host, f"{host} {verb} {address}, {rule}", address=str(address))

    def _check_name(self, host: str) -> None:
        if host in METADATA_NAMES:
            raise EndpointRefused(host, f"{host} is a cloud metadata name")

    def route(self, host: str) -> Route:
        """Connect time, without resolving: how a connection to `host` is made.

        Raises EndpointRefused for a refused literal address or name. Only AWS's S3
        endpoints and what the operator allow-listed go direct. Everything else goes
        through the proxy, which resolves and checks it on every connection (so a name
        that resolves elsewhere later is caught then) — public literal addresses too:
        reqwest, inside obstore, follows a 303 (and a 301/302 to a POST) as a GET, and
        obstore 0.12 offers no way to turn that off; through the proxy such a follow-up is
        refused (it comes without the client's proxy credentials, and its target would
        be checked anyway).
        """
        host = normalise_host(host)
        if is_aws_host(host) or self.allowed.admits_name(host):
            return Route.DIRECT
        address = parse_address(host)
        if address is not None:
            self.check_address(host, str(address))
            return Route.DIRECT if self.allowed.admits_address(address) else Route.PROXY
        self._check_name(host)
        self._check_loopback_name(host)
        return Route.PROXY

    def _check_loopback_name(self, host: str) -> None:
        """`localhost` and `*.localhost` stand for loopback whatever the resolver says
        (RFC 6761): refused unless loopback itself is allowed."""
        if _is_loopback_name(host) and self.address_rule(ipaddress.ip_address("127.0.0.1")):
            raise EndpointRefused(host, f"{host} is a loopback name (RFC 6761)")

    def resolve(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to, each checked; raises EndpointRefused."""
        host = normalise_host(host)
        address = parse_address(host)
        if address is not None:
            self.check_address(host, str(address))
            return [str(address)]
        self._check_name(host)
        try:
            addresses = list(self.resolver(host, port))
        except (OSError, UnicodeError) as exc:
            self._check_loopback_name(host)
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise EndpointUnresolvable(
                host, f"{host} does not resolve (DNS lookup failed: {detail})"
            ) from None
        if not addresses:
            raise EndpointUnresolvable(host, f"{host} does not resolve (no addresses)")
        for text in addresses:
            self.check_address(host, text)
        self._check_loopback_name(host)
        return addresses

    def connect_address(self, host: str, port: int) -> str | None:
        """For a client that makes its own connections (webhook deliveries): the checked
        address to connect to — the first `host` resolves to, so what is connected to is
        what was checked (no second lookup to rebind) — or None when the name itself is
        trusted (AWS's S3 hosts, allow-listed names). Raises EndpointRefused."""
        host = normalise_host(host)
        if is_aws_host(host) or self.allowed.admits_name(host):
            return None
        return self.resolve(host, port)[0]

    def needs_lookup(self, host: str) -> bool:
        """Whether `check_endpoint` asks the resolver about `host` (s3dest.s3.lookups runs
        those checks on threads of their own)."""
        host = normalise_host(host)
        if is_aws_host(host) or self.allowed.admits_name(host) or host in METADATA_NAMES:
            return False
        return parse_address(host) is None

    def check_endpoint(self, host: str, port: int) -> None:
        """Save time: may an endpoint on `host` be stored? Resolves names (raises)."""
        host = normalise_host(host)
        if is_aws_host(host) or self.allowed.admits_name(host):
            return
        self.resolve(host, port)


_lock = threading.Lock()
_current: EgressPolicy | None = None
_listeners: list[Callable[[], None]] = []


def configure(policy: EgressPolicy) -> None:
    """Install the process's policy (the composition root does, from Settings)."""
    global _current
    with _lock:
        _current = policy
        listeners = list(_listeners)
    for listener in listeners:
        listener()  # e.g. the writer drops clients built under the previous policy


def on_change(listener: Callable[[], None]) -> None:
    with _lock:
        _listeners.append(listener)


def current() -> EgressPolicy:
    """The installed policy; until one is installed, the one the environment gives."""
    global _current
    policy = _current
    if policy is None:
        with _lock:
            if _current is None:
                _current = EgressPolicy.from_setting(Settings.from_env().allowed_endpoint_hosts)
            policy = _current
    return policy
