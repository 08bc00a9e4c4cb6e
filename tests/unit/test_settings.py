"""Settings: each default is stated once (the Settings class), S3DEST_* variables override
it, and the README's configuration table documents every variable with that default."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from s3dest.settings import Settings, parse_duration

README = Path(__file__).resolve().parents[2] / "README.md"
# Defaults the table describes in words rather than as a value.
DESCRIBED = {
    "data_dir": "`./.s3dest`",
    "database_url": "(SQLite)",
    "secret_key": "key file `secret.key` (0600)",
    "allowed_endpoint_hosts": "(none)",
    "operator_token": "(none)",
    "sts_endpoint_url": "(AWS's regional STS)",
}
UNITS = {"GiB": 1024**3, "MiB": 1024**2, "KiB": 1024}


def env_name(field: str) -> str:
    return f"S3DEST_{field.upper()}"


def readme_defaults() -> dict[str, str]:
    """variable -> default column of README's Configure table (`A` / `B` rows split)."""
    table: dict[str, str] = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`S3DEST_"):
            continue
        names = re.findall(r"`(S3DEST_\w+)`", cells[0])
        values = [v.strip() for v in cells[1].split(" / ")] if len(names) > 1 else [cells[1]]
        assert len(values) == len(names), line
        table.update(zip(names, values, strict=True))
    return table


def value_of(text: str) -> float:
    number, _, unit = text.partition(" ")
    if not unit and number.endswith(("s", "m", "h", "d")):
        return parse_duration(number)  # a duration setting's default, e.g. 7d
    return float(number) * UNITS[unit] if unit else float(number)


def test_unset_or_empty_variables_keep_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in dataclasses.fields(Settings):
        monkeypatch.delenv(env_name(field.name), raising=False)
    assert Settings.from_env() == Settings()
    for field in dataclasses.fields(Settings):
        monkeypatch.setenv(env_name(field.name), "")
    assert Settings.from_env() == Settings()


def test_every_setting_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    given: dict[str, object] = {}
    for n, field in enumerate(dataclasses.fields(Settings), start=3):
        default = getattr(Settings(), field.name)
        if isinstance(default, bool):  # pragma: no cover - no boolean setting yet
            raise AssertionError(field.name)
        if isinstance(default, int | float):
            value: object = type(default)(n)
            text = str(value)
        elif field.name == "data_dir":
            value, text = Path(f"/srv/s3dest-{n}"), f"/srv/s3dest-{n}"
        else:
            value = text = f"value-{n}"
        monkeypatch.setenv(env_name(field.name), text)
        given[field.name] = value
    assert dataclasses.asdict(Settings.from_env()) == given


def test_readme_documents_every_variable_with_its_default() -> None:
    documented = readme_defaults()
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        name = env_name(field.name)
        assert name in documented, f"README's Configure table does not list {name}"
        if field.name in DESCRIBED:
            assert documented[name] == DESCRIBED[field.name], name
        else:
            assert value_of(documented[name]) == getattr(defaults, field.name), name
