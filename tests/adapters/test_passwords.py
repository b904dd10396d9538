"""argon2id hashes, the bundled common-password list and TOTP codes."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path

import pyotp

from xnai.adapters.security.passwords import Argon2Hasher, CommonPasswords, load_common_passwords
from xnai.adapters.security.totp import TotpCodes

ROOT = Path(__file__).resolve().parents[2]


def test_hash_is_salted_argon2id_with_rfc9106_parameters() -> None:
    hasher = Argon2Hasher()
    a, b = hasher.hash("a long pass phrase"), hasher.hash("a long pass phrase")
    assert a.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert a != b  # a fresh salt each time
    assert "a long pass phrase" not in a
    assert hasher.verify(a, "a long pass phrase") and hasher.verify(b, "a long pass phrase")
    assert not hasher.verify(a, "a long pass phrasE")
    assert not hasher.needs_rehash(a)


def test_verify_never_raises_for_bad_input() -> None:
    hasher = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)
    assert not hasher.verify("not a hash", "x")
    assert not hasher.verify("$argon2id$v=19$m=1024,t=1,p=1$broken", "x")
    assert hasher.needs_rehash("not a hash")


def test_weaker_parameters_need_a_rehash() -> None:
    cheap = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1).hash("pass phrase here")
    assert Argon2Hasher().needs_rehash(cheap)
    assert Argon2Hasher().verify(cheap, "pass phrase here")  # still verifies


def test_bundled_list_holds_thousands_of_common_passwords() -> None:
    entries = load_common_passwords()
    assert len(entries) > 20_000
    for known in ("123456", "password", "qwerty", "iloveyou", "letmein", "trustno1", "admin"):
        assert known in entries
    # Long ones matter most, because shorter ones fail the length rule anyway.
    for long_one in (
        "password1234",
        "qwertyuiop12",
        "123456789012",
        "iloveyou2024",
        "p@ssw0rd1234",
    ):
        assert long_one in entries
    assert all(e == e.lower() for e in entries)


def test_list_check_ignores_case() -> None:
    listed = CommonPasswords()
    assert listed("PassWord1234")
    assert listed("WELCOME12345")
    assert not listed("glacier-orbit-tangerine-71")


def test_list_can_be_given_explicitly() -> None:
    listed = CommonPasswords(frozenset({"only this one"}))
    assert listed("ONLY THIS ONE")
    assert not listed("password")


def test_list_file_is_packaged() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["xnai"]
    assert any(fnmatch("adapters/security/common_passwords.txt", p) for p in patterns)
    assert (ROOT / "src/xnai/adapters/security/common_passwords.txt").is_file()


NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def test_totp_accepts_the_current_and_adjacent_steps_only() -> None:
    codes = TotpCodes()
    secret = codes.new_secret()
    step = pyotp.TOTP(secret).timecode(NOW)
    assert codes.matching_step(secret, codes.code_at(secret, NOW), NOW) == step
    earlier = codes.code_at(secret, NOW - timedelta(seconds=30))
    assert codes.matching_step(secret, earlier, NOW) == step - 1
    much_earlier = codes.code_at(secret, NOW - timedelta(seconds=90))
    assert codes.matching_step(secret, much_earlier, NOW) is None


def test_totp_matches_what_an_authenticator_app_shows() -> None:
    codes = TotpCodes()
    secret = codes.new_secret()
    app_code = pyotp.TOTP(secret).at(NOW)  # the reference implementation
    assert codes.matching_step(secret, app_code, NOW) is not None
    assert codes.matching_step(secret, f"{app_code[:3]} {app_code[3:]}", NOW) is not None


def test_totp_refuses_malformed_codes() -> None:
    codes = TotpCodes()
    secret = codes.new_secret()
    for bad in ("", "12345", "1234567", "abcdef", "12345x"):
        assert codes.matching_step(secret, bad, NOW) is None


def test_totp_secret_and_uri() -> None:
    codes = TotpCodes()
    secret = codes.new_secret()
    assert len(secret) == 32 and secret != codes.new_secret()  # 160 random bits, base32
    uri = codes.provisioning_uri(secret, "alice", "Xoe-NovAi")
    assert uri.startswith("otpauth://totp/Xoe-NovAi:alice?")
    assert f"secret={secret}" in uri and "issuer=Xoe-NovAi" in uri
