from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest

from s3dest.destinations.secrets import (
    KEY_FILE_NAME,
    SecretBox,
    add_key_to_file,
    generate_key,
    key_file_path,
    key_id,
)
from s3dest.errors import S3destError

PLAINTEXT = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AAD = "destination:d-1:secretAccessKey"


def raw(key: str) -> bytes:
    return base64.urlsafe_b64decode(key)


def assert_clean(error: BaseException, *keys: str) -> None:
    """No plaintext and no key material in the message or repr of an error."""
    for text in (str(error), repr(error)):
        assert PLAINTEXT not in text
        for key in keys:
            assert key not in text
            assert key.rstrip("=") not in text


def test_generate_key_is_32_random_bytes_in_urlsafe_base64() -> None:
    key = generate_key()
    assert len(key) == 44
    assert len(raw(key)) == 32
    assert generate_key() != key
    assert SecretBox.generate_key is not None


def test_round_trip_and_token_format() -> None:
    key = generate_key()
    box = SecretBox.from_keys([key])
    token = box.encrypt(PLAINTEXT, aad=AAD)
    version, kid, body = token.split(":")
    assert version == "v1"
    assert kid == key_id(raw(key)) == box.primary_key_id
    assert len(kid) == 8
    assert all(c.isalnum() or c in "-_" for c in body)
    assert token.isascii()
    assert PLAINTEXT not in token
    assert box.decrypt(token, aad=AAD) == PLAINTEXT


def test_nonce_is_random() -> None:
    box = SecretBox.from_keys([generate_key()])
    assert box.encrypt("same", aad=AAD) != box.encrypt("same", aad=AAD)


def test_unicode_and_empty_plaintext() -> None:
    box = SecretBox.from_keys([generate_key()])
    for text in ("", "pässwörd ✓", "x" * 5000):
        assert box.decrypt(box.encrypt(text, aad=AAD), aad=AAD) == text


def test_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # does not exist yet
    box = SecretBox.from_settings(data_dir, None)
    path = data_dir / KEY_FILE_NAME
    assert path == key_file_path(data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert box.source == "file"
    content = path.read_text()
    token = box.encrypt(PLAINTEXT, aad=AAD)

    again = SecretBox.from_settings(data_dir, "")  # empty env value means unset
    assert path.read_text() == content
    assert again.key_ids == box.key_ids
    assert again.decrypt(token, aad=AAD) == PLAINTEXT
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE_NAME]  # no temp files left


def test_key_file_created_0600_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        SecretBox.from_settings(tmp_path, None)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode) == 0o600


def test_existing_key_file_is_not_overwritten(tmp_path: Path) -> None:
    key = generate_key()
    (tmp_path / KEY_FILE_NAME).write_text(f"# s3dest keys, newest first\n\n{key}\n")
    box = SecretBox.from_settings(tmp_path, None)
    assert box.key_ids == (key_id(raw(key)),)


def test_world_readable_key_file_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = generate_key()
    path = tmp_path / KEY_FILE_NAME
    path.write_text(key + "\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        SecretBox.from_settings(tmp_path, None)
    assert "chmod 600" in caplog.text
    assert key not in caplog.text


def test_two_keys_newest_encrypts_old_decrypts() -> None:
    old, new = generate_key(), generate_key()
    old_box = SecretBox.from_keys([old])
    old_token = old_box.encrypt(PLAINTEXT, aad=AAD)

    box = SecretBox.from_keys([new, old])
    assert box.key_ids == (key_id(raw(new)), key_id(raw(old)))
    assert box.decrypt(old_token, aad=AAD) == PLAINTEXT
    new_token = box.encrypt(PLAINTEXT, aad=AAD)
    assert new_token.split(":")[1] == key_id(raw(new))
    with pytest.raises(S3destError):
        old_box.decrypt(new_token, aad=AAD)


def test_rotation_detection_and_reencrypt() -> None:
    old, new = generate_key(), generate_key()
    old_token = SecretBox.from_keys([old]).encrypt(PLAINTEXT, aad=AAD)
    box = SecretBox.from_keys([new, old])
    assert box.needs_rotation(old_token) is True
    rotated = box.reencrypt(old_token, aad=AAD)
    assert box.needs_rotation(rotated) is False
    assert box.reencrypt(rotated, aad=AAD) == rotated
    assert SecretBox.from_keys([new]).decrypt(rotated, aad=AAD) == PLAINTEXT


def test_env_with_several_keys(tmp_path: Path) -> None:
    first, second, third = generate_key(), generate_key(), generate_key()
    env = f" {first} , {second},,{third.rstrip('=')} "  # spaces, empty entry, no padding
    box = SecretBox.from_settings(tmp_path, env)
    assert box.source == "env"
    assert box.key_ids == tuple(key_id(raw(k)) for k in (first, second, third))
    assert not (tmp_path / KEY_FILE_NAME).exists()  # env wins; no file is generated
    assert box.encrypt("x", aad=AAD).split(":")[1] == key_id(raw(first))


def test_standard_base64_keys_are_accepted() -> None:
    key = os.urandom(32)
    box = SecretBox.from_keys([base64.b64encode(key).decode()])
    assert box.key_ids == (key_id(key),)


def test_duplicate_keys_are_collapsed() -> None:
    key = generate_key()
    assert len(SecretBox.from_keys([key, key]).key_ids) == 1


def test_unknown_key_is_named_and_nothing_leaks() -> None:
    old, new = generate_key(), generate_key()
    token = SecretBox.from_keys([old]).encrypt(PLAINTEXT, aad=AAD)
    box = SecretBox.from_keys([new])
    with pytest.raises(S3destError) as info:
        box.decrypt(token, aad=AAD)
    kid = key_id(raw(old))
    assert info.value.message.startswith(
        f"secret was encrypted with key {kid}, which is not configured; add it to S3DEST_SECRET_KEY"
    )
    assert_clean(info.value, old, new)


def test_tampered_token_fails_clearly() -> None:
    key = generate_key()
    box = SecretBox.from_keys([key])
    token = box.encrypt(PLAINTEXT, aad=AAD)
    prefix, body = token.rsplit(":", 1)
    flipped = body[:-3] + ("A" if body[-3] != "A" else "B") + body[-2:]
    with pytest.raises(S3destError) as info:
        box.decrypt(f"{prefix}:{flipped}", aad=AAD)
    assert "altered" in info.value.message
    assert_clean(info.value, key)


def test_key_id_cannot_be_relabelled() -> None:
    a, b = generate_key(), generate_key()
    box = SecretBox.from_keys([a, b])
    token = box.encrypt(PLAINTEXT, aad=AAD)
    relabelled = token.replace(key_id(raw(a)), key_id(raw(b)))
    with pytest.raises(S3destError) as info:
        box.decrypt(relabelled, aad=AAD)
    assert_clean(info.value, a, b)


def test_wrong_aad_fails() -> None:
    key = generate_key()
    box = SecretBox.from_keys([key])
    token = box.encrypt(PLAINTEXT, aad="destination:d-1:secretAccessKey")
    with pytest.raises(S3destError) as info:
        box.decrypt(token, aad="destination:d-2:secretAccessKey")
    assert "another destination or field" in info.value.message
    with pytest.raises(S3destError):
        box.decrypt(token, aad="destination:d-1:sessionToken")
    assert_clean(info.value, key)


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("", "malformed"),
        ("plaintext-secret", "malformed"),
        ("v2:0123abcd:AAAA", "version"),
        ("v1:XYZ:AAAA", "key id"),
        ("v1:0123abcd:!!!!", "bad base64"),
        ("v1:0123abcd:AAAA", "too short"),
    ],
)
def test_malformed_tokens(token: str, fragment: str) -> None:
    key = generate_key()
    box = SecretBox.from_keys([key])
    with pytest.raises(S3destError) as info:
        box.decrypt(token, aad=AAD)
    assert fragment in info.value.message
    assert_clean(info.value, key)


@pytest.mark.parametrize(
    "bad",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(os.urandom(16)).decode(),  # too short
        base64.urlsafe_b64encode(os.urandom(33)).decode(),  # too long
    ],
    ids=["not-base64", "too-short", "too-long"],  # stable ids: xdist workers must agree
)
def test_bad_env_keys_are_rejected_without_echo(tmp_path: Path, bad: str) -> None:
    good = generate_key()
    with pytest.raises(S3destError) as info:
        SecretBox.from_settings(tmp_path, f"{good},{bad}")
    assert "key 2 of S3DEST_SECRET_KEY" in info.value.message
    assert "32" in info.value.message
    assert_clean(info.value, good, bad)


def test_empty_key_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).write_text("# nothing here\n")
    with pytest.raises(S3destError) as info:
        SecretBox.from_settings(tmp_path, None)
    assert "holds no key" in info.value.message


def test_add_key_to_file_prepends_and_keeps_old_keys(tmp_path: Path) -> None:
    box = SecretBox.from_settings(tmp_path, None)
    token = box.encrypt(PLAINTEXT, aad=AAD)
    new_id = add_key_to_file(tmp_path)
    path = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len([line for line in path.read_text().splitlines() if line]) == 2

    rotated = SecretBox.from_settings(tmp_path, None)
    assert rotated.key_ids == (new_id, box.primary_key_id)
    assert rotated.needs_rotation(token)
    assert rotated.decrypt(token, aad=AAD) == PLAINTEXT
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE_NAME]


def test_add_key_to_file_creates_the_file(tmp_path: Path) -> None:
    kid = SecretBox.add_key_to_file(tmp_path / "new")
    assert SecretBox.from_settings(tmp_path / "new", None).key_ids == (kid,)


def test_repr_shows_only_key_ids() -> None:
    key = generate_key()
    box = SecretBox.from_keys([key])
    text = repr(box)
    assert text == f"SecretBox(key_ids=['{key_id(raw(key))}'], source='given')"
    assert key not in text


def test_no_keys_is_an_error() -> None:
    with pytest.raises(S3destError):
        SecretBox([])
    with pytest.raises(S3destError):
        SecretBox([b"short"])
