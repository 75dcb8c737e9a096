"""livehub.core.clientaddr: who the client is, behind trusted proxies or not."""

import pytest

from livehub.core.clientaddr import client_address, from_scope, parse_networks

PROXIES = parse_networks("10.0.0.0/8, 127.0.0.1 ::1")


def test_the_peer_is_the_client_unless_it_is_a_trusted_proxy():
    assert client_address("198.51.100.7", ["203.0.113.9"], PROXIES) == "198.51.100.7"
    assert client_address("198.51.100.7", ["203.0.113.9"], ()) == "198.51.100.7"
    assert client_address("127.0.0.1", [], PROXIES) == "127.0.0.1"  # no header: the proxy


def test_behind_proxies_the_nearest_untrusted_hop_is_the_client():
    # the client made up the first entry; our proxies added the last two
    xff = ["1.2.3.4, 203.0.113.9", "10.1.2.3"]
    assert client_address("127.0.0.1", xff, PROXIES) == "203.0.113.9"
    assert client_address("10.9.9.9", ["203.0.113.9"], PROXIES) == "203.0.113.9"
    assert client_address("::1", ["2001:db8::5"], PROXIES) == "2001:db8::5"
    # every hop is ours: the farthest one
    assert client_address("127.0.0.1", ["10.0.0.2, 10.0.0.3"], PROXIES) == "10.0.0.2"


def test_garbage_in_the_header_is_not_believed():
    assert client_address("127.0.0.1", ["evil, 203.0.113.9"], PROXIES) == "203.0.113.9"
    assert client_address("127.0.0.1", ["203.0.113.9, not-an-ip"], PROXIES) == "127.0.0.1"
    assert client_address("127.0.0.1", [""], PROXIES) == "127.0.0.1"


def test_no_peer_address_is_one_shared_key():
    assert client_address(None, ["203.0.113.9"], PROXIES) == "unknown"


def test_from_scope_reads_client_and_headers():
    scope = {
        "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"x"), (b"x-forwarded-for", b"203.0.113.9")],
    }
    assert from_scope(scope, "127.0.0.1") == "203.0.113.9"
    assert from_scope(scope, "") == "127.0.0.1"  # no trusted proxies: header ignored
    assert from_scope({"client": None, "headers": []}, "") == "unknown"


def test_bad_proxy_lists_are_refused():
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/8, nonsense")
    assert parse_networks("") == ()
