"""verify_signature: HMAC-SHA256 over `v0:{ts}:` + raw body, ±300 s, never raises."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import pytest

from frameio_kit import verify_signature
from shared.core.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_headers

SECRET = "s3cret"
BODY = b'{"type":"file.ready","note":"caf\xc3\xa9"}'


def check(headers: dict[str, str], body: bytes = BODY, secret: str = SECRET) -> bool:
    return asyncio.run(verify_signature(headers, body, secret))


def test_valid_signature_is_accepted():
    assert check(sign_headers(BODY, SECRET)) is True


def test_signature_matches_frameio_scheme_computed_independently():
    ts = int(time.time())
    expected = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign_headers(BODY, SECRET, ts)[SIGNATURE_HEADER] == expected


def test_tampered_body_is_rejected():
    assert check(sign_headers(BODY, SECRET), body=BODY + b" ") is False


def test_wrong_secret_is_rejected():
    assert check(sign_headers(BODY, "other")) is False


@pytest.mark.parametrize("offset", [301, -301, 10_000])
def test_stale_or_future_timestamp_is_rejected(offset: int):
    assert check(sign_headers(BODY, SECRET, int(time.time()) - offset)) is False


@pytest.mark.parametrize("offset", [299, -299])
def test_timestamp_inside_window_is_accepted(offset: int):
    assert check(sign_headers(BODY, SECRET, int(time.time()) - offset)) is True


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_missing_header_is_rejected(missing: str):
    headers = sign_headers(BODY, SECRET)
    del headers[missing]
    assert check(headers) is False


@pytest.mark.parametrize(
    "signature",
    ["", "v0=", "v1=" + "0" * 64, "v0=" + "é" * 64, "v0=" + "ü" * 10, "x" * 10_000, "v0=" + "\u2603" * 64],
)
def test_malformed_or_non_ascii_signature_is_false_not_an_exception(signature: str):
    headers = sign_headers(BODY, SECRET)
    headers[SIGNATURE_HEADER] = signature
    assert check(headers) is False


@pytest.mark.parametrize("timestamp", ["", "abc", "12.5", " 1700000000", "١٢٣", "9" * 40, "-5"])
def test_malformed_timestamp_is_rejected(timestamp: str):
    headers = sign_headers(BODY, SECRET)
    headers[TIMESTAMP_HEADER] = timestamp
    assert check(headers) is False


def test_header_names_are_case_insensitive():
    headers = {k.lower(): v for k, v in sign_headers(BODY, SECRET).items()}
    assert check(headers) is True
