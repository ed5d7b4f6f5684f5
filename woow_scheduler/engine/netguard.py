"""Where a worker may connect: the SSRF guard of the ``http`` strategy.

The check runs at connect time, on the addresses the host name resolves to right then, so neither a
DNS answer that changes after the workflow was saved nor a redirect to an internal address gets
through: every connection (each redirect hop opens its own) is resolved, every address is checked,
and the socket is opened to the checked address itself (TLS still verifies the host name).

Refused unless allowed: loopback, private, link-local (cloud metadata at 169.254.169.254 and
fd00:ec2::254), shared (100.64/10), multicast, reserved and unspecified addresses — anything that
is not globally routable.  An operator allows host names (``WOOW_HTTP_ALLOWED_HOSTS``) or networks
(``WOOW_HTTP_ALLOWED_NETWORKS``) for everyone; owners with the ``http_private`` privilege may reach
any address.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import certifi
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class DestinationRefused(Exception):
    """A connection to a non-public address that nobody allowed."""


def _plain(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def is_public(ip: IPAddress) -> bool:
    plain = _plain(ip)
    return plain.is_global and not plain.is_multicast


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Destinations:
    """Which non-public destinations are allowed."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    any_address: bool = False  # the owner holds http_private

    @classmethod
    def build(cls, hosts: Iterable[str], networks: Iterable[str], *, any_address: bool = False) -> Destinations:
        nets: list[IPNetwork] = []
        for net in networks:
            nets.append(ipaddress.ip_network(net.strip(), strict=False))
        return cls(frozenset(h.strip().lower().rstrip(".") for h in hosts if h.strip()), tuple(nets), any_address)

    def host_allowed(self, host: str) -> bool:
        return self.any_address or host.lower().rstrip(".") in self.hosts

    def address_allowed(self, ip: IPAddress) -> bool:
        if self.any_address or is_public(ip):
            return True
        plain = _plain(ip)
        return any(plain in net or ip in net for net in self.networks)

    def check_literal(self, host: str) -> str | None:
        """Why a host known without DNS (an address, ``localhost``) is refused, else ``None``."""
        if self.host_allowed(host):
            return None
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            return f"'{host}' is the worker itself"
        ip = literal_address(host)
        if ip is not None and not self.address_allowed(ip):
            return f"{ip} is not a public address"
        return None

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to, all checked; raise :class:`DestinationRefused`."""
        reason = self.check_literal(host)
        if reason:
            raise DestinationRefused(reason)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve '{host}': {exc.strerror or exc}") from None
        addresses: list[str] = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if not self.host_allowed(host) and not self.address_allowed(ip):
                raise DestinationRefused(f"'{host}' resolves to {ip}, which is not a public address")
            if str(ip) not in addresses:
                addresses.append(str(ip))
        if not addresses:
            raise httpcore.ConnectError(f"'{host}' has no address")
        return addresses


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to checked addresses."""

    def __init__(self, destinations: Destinations) -> None:
        self.destinations = destinations

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in self.destinations.resolve(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:  # pragma: no cover
        raise DestinationRefused("unix sockets are not allowed")


def ssl_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport whose every connection goes through :class:`GuardedBackend` (no proxies)."""

    def __init__(self, destinations: Destinations, *, verify: bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        # our own pool in place of the one HTTPTransport built: same options, the guarded backend
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context(verify),
            max_connections=10,
            max_keepalive_connections=0,
            network_backend=GuardedBackend(destinations),
        )
