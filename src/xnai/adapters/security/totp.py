"""Time-based one-time codes (RFC 6238) with pyotp."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp


class TotpCodes:
    """Six-digit codes over 30-second steps; one step of clock drift either way is accepted."""

    def __init__(self, digits: int = 6, interval: int = 30, drift_steps: int = 1) -> None:
        self.digits = digits
        self.interval = interval
        self.drift_steps = drift_steps

    def new_secret(self) -> str:
        """A random base32 secret of 160 bits."""
        return pyotp.random_base32()

    def provisioning_uri(self, secret: str, account: str, issuer: str) -> str:
        """The ``otpauth://totp/...`` URI for an authenticator app."""
        return self._totp(secret).provisioning_uri(name=account, issuer_name=issuer)

    def code_at(self, secret: str, at: datetime) -> str:
        """The code valid at ``at`` (what an authenticator app shows)."""
        return self._totp(secret).at(at)

    def matching_step(self, secret: str, code: str, at: datetime) -> int | None:
        """The time step whose code equals ``code``, checking every allowed step alike."""
        code = code.replace(" ", "")
        if len(code) != self.digits or not code.isdigit():
            return None
        totp = self._totp(secret)
        now = totp.timecode(at)
        found = None
        for step in range(now - self.drift_steps, now + self.drift_steps + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                found = step
        return found

    def _totp(self, secret: str) -> pyotp.TOTP:
        return pyotp.TOTP(secret, digits=self.digits, interval=self.interval)
