"""Behaviour every OneTimeCodes adapter must share; subclass and override `codes`.

Codes are checked against the RFC 6238 test vector and against each other, so every
adapter computes the codes an authenticator app shows."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from xnai.domain.identity import OneTimeCodes

# RFC 6238 appendix B: the SHA-1 secret "12345678901234567890"; 8-digit code 94287082 at
# 59 s, so its 6-digit form is 287082.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode("ascii")
RFC_AT = datetime.fromtimestamp(59, UTC)
RFC_STEP = 1
AT = datetime(2026, 11, 26, 9, 0, 10, tzinfo=UTC)


class OneTimeCodesContract:
    """Mixin of contract tests; a `Test...` subclass supplies `codes` (six digits, 30-second
    steps, one step of drift)."""

    @pytest.fixture
    def codes(self) -> OneTimeCodes:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("OneTimeCodesContract subclasses must override the `codes` fixture")

    def test_satisfies_the_port(self, codes: OneTimeCodes) -> None:
        assert isinstance(codes, OneTimeCodes)

    def test_new_secrets_are_distinct_base32_of_at_least_128_bits(
        self, codes: OneTimeCodes
    ) -> None:
        a, b = codes.new_secret(), codes.new_secret()
        assert a != b
        assert len(base64.b32decode(a + "=" * (-len(a) % 8))) >= 16

    def test_the_rfc_test_vector_matches_its_step(self, codes: OneTimeCodes) -> None:
        assert codes.matching_step(RFC_SECRET, "287082", RFC_AT) == RFC_STEP
        assert codes.matching_step(RFC_SECRET, "287 082", RFC_AT) == RFC_STEP

    def test_one_step_of_drift_is_accepted_and_two_are_not(self, codes: OneTimeCodes) -> None:
        step = RFC_STEP
        assert codes.matching_step(RFC_SECRET, "287082", RFC_AT + timedelta(seconds=30)) == step
        assert codes.matching_step(RFC_SECRET, "287082", RFC_AT + timedelta(seconds=61)) is None

    @pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "28708x"])
    def test_malformed_codes_match_nothing(self, codes: OneTimeCodes, code: str) -> None:
        assert codes.matching_step(RFC_SECRET, code, RFC_AT) is None

    def test_a_code_of_another_secret_does_not_match(self, codes: OneTimeCodes) -> None:
        other = codes.new_secret()
        assert codes.matching_step(other, "287082", RFC_AT) is None

    def test_the_provisioning_uri_names_account_issuer_and_secret(
        self, codes: OneTimeCodes
    ) -> None:
        secret = codes.new_secret()
        uri = urlparse(codes.provisioning_uri(secret, "alice@example.org", "Xoe NovAi"))
        assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
        assert "alice@example.org" in unquote(uri.path)
        query = parse_qs(uri.query)
        assert query["secret"] == [secret] and query["issuer"] == ["Xoe NovAi"]
