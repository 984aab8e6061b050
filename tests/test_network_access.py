"""Network access classes: every range API.md section 8 names, judged exactly."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trio_mws
from trio_mws.network_access import ALL_NETWORKS, NetworkAccess, address_class, check_address

LOOPBACK, PRIVATE, INTERNET = NetworkAccess.LOOPBACK, NetworkAccess.PRIVATE, NetworkAccess.INTERNET

CASES = [
    ("127.0.0.1", LOOPBACK),
    ("127.255.255.254", LOOPBACK),
    ("::1", LOOPBACK),
    ("::ffff:127.0.0.1", LOOPBACK),
    ("10.0.0.1", PRIVATE),
    ("10.255.255.255", PRIVATE),
    ("172.16.0.1", PRIVATE),
    ("172.31.255.255", PRIVATE),
    ("172.32.0.1", INTERNET),
    ("172.15.255.255", INTERNET),
    ("192.168.1.1", PRIVATE),
    ("100.64.0.1", PRIVATE),
    ("100.127.255.255", PRIVATE),
    ("100.128.0.0", INTERNET),
    ("169.254.169.254", PRIVATE),  # cloud metadata
    ("fd00:ec2::254", PRIVATE),  # AWS's IPv6 metadata address (unique local)
    ("fc00::1", PRIVATE),
    ("fe80::1", PRIVATE),
    ("fe80::1%2", PRIVATE),
    ("::ffff:10.1.2.3", PRIVATE),
    ("::ffff:169.254.169.254", PRIVATE),
    ("64:ff9b::a9fe:a9fe", PRIVATE),  # NAT64 for 169.254.169.254
    ("2002:c0a8:0101::1", PRIVATE),  # 6to4 for 192.168.1.1
    ("8.8.8.8", INTERNET),
    ("93.184.216.34", INTERNET),
    ("2606:4700:4700::1111", INTERNET),
    ("::ffff:8.8.8.8", INTERNET),
    ("0.0.0.0", None),
    ("0.1.2.3", None),
    ("::", None),
    ("224.0.0.1", None),
    ("239.255.255.250", None),
    ("255.255.255.255", None),
    ("240.0.0.1", None),
    ("192.0.2.1", None),
    ("198.51.100.7", None),
    ("203.0.113.9", None),
    ("198.18.0.1", None),
    ("ff02::1", None),
    ("2001:db8::1", None),
    ("2001::1", None),  # Teredo
    ("fec0::1", None),
    ("::1.2.3.4", None),  # deprecated IPv4-compatible
    ("4000::1", None),  # outside 2000::/3
]


@pytest.mark.parametrize(("address", "expected"), CASES)
def test_address_classes(address: str, expected: NetworkAccess | None) -> None:
    assert address_class(address) == expected


@given(st.ip_addresses(v=4))
def test_ipv4_mapped_and_nat64_addresses_are_judged_as_their_ipv4(
    ip: ipaddress.IPv4Address,
) -> None:
    expected = address_class(ip)
    assert address_class(f"::ffff:{ip}") == expected
    assert (
        address_class(ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ip)))
        == expected
    )


@given(st.ip_addresses())
def test_every_address_has_one_verdict_and_check_agrees(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    found = address_class(ip)
    for allowed in (LOOPBACK, PRIVATE, INTERNET, LOOPBACK | PRIVATE, ALL_NETWORKS):
        if found is not None and found & allowed:
            check_address(ip, allowed)
        else:
            with pytest.raises(trio_mws.ConnectError) as caught:
                check_address(ip, allowed)
            assert caught.value.status is trio_mws.WebErrorStatus.CANNOT_CONNECT
            assert str(ip) in str(caught.value)


def test_the_refusal_names_the_address_and_the_missing_access() -> None:
    with pytest.raises(trio_mws.ConnectError) as caught:
        check_address("169.254.169.254", INTERNET)
    message = str(caught.value)
    assert "169.254.169.254" in message
    assert "PRIVATE" in message
    assert "INTERNET" in message


def test_not_an_address_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        address_class("example.org")
