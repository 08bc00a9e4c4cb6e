"""What of an endpoint's reply may reach a tenant (`s3dest.s3.reply_text`), unit by unit;
tests/security/test_reflection.py tries the same against a running server."""

from __future__ import annotations

import pytest

from s3dest.s3 import reply_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("<script>alert(1)</script>Denied", "alert(1) Denied"),
        ("&lt;b&gt;bold&lt;/b&gt;", "bold"),
        ("a\x1b[31mred\x00\x07", "a[31mred"),
        ("line\r\nInjected: header", "line Injected: header"),
        ("\u202egnp.exe\u200b", "gnp.exe"),
        ("", ""),
    ],
)
def test_messages_are_plain_text(raw: str, shown: str) -> None:
    assert reply_text.message(raw) == shown


def test_messages_are_bounded() -> None:
    shown = reply_text.message("A" * 1_000_000)
    assert len(shown) == reply_text.MAX_MESSAGE_CHARS and shown.endswith("…")


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("AccessDenied", True),
        ("Client.InvalidArgument", True),
        ("Access Denied", False),
        ("<b>", False),
        ("A" * 65, False),
        ("", False),
    ],
)
def test_only_s3_codes_are_codes(value: str, kept: bool) -> None:
    assert (reply_text.s3_code(value) == value) is kept


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("eu-west-2", True),
        ("us-gov-west-1", True),
        ("default", True),  # Ceph RGW's zonegroup
        ("eu-west-1<script>", False),
        ("EU-WEST-1", False),
        ("-x", False),
        ("a" * 65, False),
    ],
)
def test_only_regions_are_regions(value: str, kept: bool) -> None:
    assert (reply_text.region(value) == value) is kept


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ('"9b2cf535f27731c974343645a3985328"', True),
        ('"9b2cf535f27731c974343645a3985328-12"', True),
        ('W/"abc"', True),
        ('"<img src=x>"', False),
        ('"' + "a" * 200 + '"', False),
    ],
)
def test_only_etags_are_etags(value: str, kept: bool) -> None:
    assert (reply_text.etag(value) == value) is kept
