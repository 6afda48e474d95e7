"""Allowed origins of publishable keys are compared as browsers send the Origin header."""

from __future__ import annotations

import re

import pytest

from control_plane.widget.origins import normalize_origin, origin_allowed

pytestmark = pytest.mark.unit


def test_origins_are_normalized_as_browsers_send_them() -> None:
    assert normalize_origin("HTTPS://Shop.Example.com:443/") == "https://shop.example.com"
    assert normalize_origin("http://localhost:5173") == "http://localhost:5173"
    assert normalize_origin("http://[::1]:8080") == "http://[::1]:8080"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("shop.example.com", "not an http(s) origin"),
        ("https://x.com/page", "more than an origin"),
        ("ftp://x.com", "not an http(s) origin"),
        ("https://*.x.com", "wildcards"),
        ("https://x.com:99999", "not a web origin"),
    ],
)
def test_anything_but_an_origin_is_refused_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        normalize_origin(value)


def test_only_listed_origins_are_allowed() -> None:
    allowed = ["https://shop.example.com"]
    assert origin_allowed("https://shop.example.com", allowed)
    assert origin_allowed("https://SHOP.example.com:443", allowed)
    assert not origin_allowed("https://shop.example.com.evil.net", allowed)
    assert not origin_allowed("http://shop.example.com", allowed)
    assert not origin_allowed("null", allowed)
    assert not origin_allowed(None, allowed)
