"""The CLI as a person meets it (issue 15 item 8), in-process through click's runner on a
SQLite data directory: clean errors instead of tracebacks, `--json` on every command that
prints data (plain UTF-8), aligned tables with headers, unique project names.

Remote mode (`--url`) against a real server is in tests/integration/test_cli_remote.py.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from s3dest.cli import main
from s3dest.cli.output import table
from s3dest.store.queue.states import MessageState

AKIA = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key: made up
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    for name in ("S3DEST_URL", "S3DEST_API_KEY", "S3DEST_PROJECT", "S3DEST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("S3DEST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("S3DEST_SECRET_KEY", "")
    monkeypatch.setenv("S3DEST_LOG_LEVEL", "WARNING")
    yield CliRunner()


def run(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(main, list(args), catch_exceptions=True)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return result.stdout


def clean_failure(result: Result) -> str:
    """A non-zero exit with an `error:` line (or click's usage error), never a traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output + result.stderr
    assert re.search(r"^(error|Error): ", result.stderr, re.M), result.stderr
    return result.stderr


def make_destination(cli: CliRunner, name: str = "ampersandS3Bucket") -> dict[str, object]:
    created = ok(
        run(
            cli,
            "destinations",
            "create",
            "--name",
            name,
            "--bucket",
            "ampersand-integration-bucket",
            "--region",
            "us-west-2",
            "--access-key-id",
            AKIA,
            "--secret-access-key",
            SECRET,
        )
    )
    found: dict[str, object] = json.loads(created)
    return found


def test_an_unknown_destination_is_an_error_naming_the_option(cli: CliRunner) -> None:
    """The issue's traceback: `deliveries list --destination nope`."""
    ok(run(cli, "projects", "create", "acme"))
    result = run(cli, "deliveries", "list", "--destination", "nope")
    stderr = clean_failure(result)
    assert result.exit_code == 2
    assert "no destination 'nope'" in stderr
    assert re.search(r"^  --destination: .*s3dest destinations list", stderr, re.M), stderr


def test_bad_input_to_any_command_ends_in_one_error_line(cli: CliRunner, tmp_path: Path) -> None:
    ok(run(cli, "projects", "create", "acme"))
    bad_yaml = tmp_path / "amp.yaml"
    bad_yaml.write_text("specVersion: [unclosed\n")
    message = tmp_path / "message.json"
    message.write_text('{"destination": "nope"}')
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cases = [
        ("destinations", "show", "nope"),
        ("destinations", "update", "nope", "--region", "eu-west-1"),
        ("destinations", "delete", "nope"),
        ("destinations", "test", "nope"),
        ("destinations", "orphans", "nope"),
        ("destinations", "create", "--name", "x", "--bucket", "Bad_Bucket", "--region", "r"),
        ("deliveries", "show", "nope"),
        ("deliveries", "replay", "nope"),
        ("deliveries", "replay", "--destination", "nope"),
        ("deliveries", "list", "--project", "nope"),
        ("deliveries", "list", "--limit", "0"),
        ("projects", "keys", "revoke", "nope"),
        ("projects", "create", "acme"),
        ("projects", "create", "  "),
        ("manifest", "validate", str(bad_yaml)),
        ("manifest", "apply", str(bad_yaml)),
        ("send", str(message), "--url", closed, "--api-key", "s3d_madeup"),
        ("deliveries", "list", "--url", closed, "--api-key", "s3d_madeup"),
        ("destinations", "list", "--url", closed),
        ("destinations", "list", "--api-key", "s3d_madeup"),
        ("serve", "--port", "99999"),  # was served on 34463 (99999 mod 65536)
        (
            "destinations",
            "create",
            "--name",
            "y",
            "--bucket",
            "ampersand-b",
            "--region",
            "r",
            "--access-key-id",
            AKIA,
            "--secret-access-key",
            SECRET,
            "--endpoint-url",
            "http://[::1",
        ),
    ]
    for args in cases:
        result = run(cli, *args)
        try:
            clean_failure(result)
        except AssertionError as exc:
            raise AssertionError(f"s3dest {' '.join(args)}: {exc}") from None
    # A setting that is not a number: int()'s ValueError was a traceback.
    bad_setting = cli.invoke(main, ["projects", "list"], env={"S3DEST_CLAIM_BATCH": "lots"})
    assert "S3DEST_CLAIM_BATCH" in clean_failure(bad_setting)
    assert bad_setting.exit_code == 2
    other_database = cli.invoke(
        main, ["projects", "list"], env={"S3DEST_DATABASE_URL": "mysql://s3dest@127.0.0.1/s3dest"}
    )
    assert "postgresql://" in clean_failure(other_database)


def test_remote_mode_refuses_project_and_needs_a_key(cli: CliRunner) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    no_key = clean_failure(run(cli, "destinations", "list", "--url", url))
    assert "S3DEST_API_KEY" in no_key
    with_project = run(
        cli, "destinations", "list", "--url", url, "--api-key", "k", "--project", "a"
    )
    assert "the API key picks the project" in clean_failure(with_project)


def test_json_output_is_plain_utf8(cli: CliRunner) -> None:
    ok(run(cli, "projects", "create", "acme"))
    make_destination(cli)
    shown = ok(run(cli, "destinations", "show", "ampersandS3Bucket"))
    assert "\\u" not in shown
    assert json.loads(shown)["accessKeyId"] == "AKIA…MPLE"
    assert '"AKIA…MPLE"' in shown
    listed = json.loads(ok(run(cli, "destinations", "list", "--json")))
    assert [d["name"] for d in listed["destinations"]] == ["ampersandS3Bucket"]
    keys = json.loads(ok(run(cli, "projects", "keys", "list", "--json")))["keys"]
    assert len(keys) == 1 and keys[0]["name"] == "default"
    projects = json.loads(ok(run(cli, "projects", "list", "--json")))["projects"]
    assert [p["name"] for p in projects] == ["acme"]
    created = json.loads(ok(run(cli, "projects", "create", "beta", "--json")))
    assert created["name"] == "beta" and created["apiKey"].startswith("s3d_")
    deliveries = json.loads(ok(run(cli, "deliveries", "list", "--project", "acme", "--json")))
    assert deliveries == {"deliveries": [], "nextCursor": None}


def test_every_message_state_is_a_state_choice(cli: CliRunner) -> None:
    """`--state` offers the store's states, batching and batched (SPEC §9) included."""
    ok(run(cli, "projects", "create", "acme"))
    group = main.commands["deliveries"]
    assert isinstance(group, click.Group)
    for command in ("list", "export"):
        [state] = [p for p in group.commands[command].params if p.name == "state"]
        assert isinstance(state.type, click.Choice)
        assert list(state.type.choices) == [s.value for s in MessageState]
    found = ok(run(cli, "deliveries", "list", "--state", "batched", "--project", "acme", "--json"))
    assert json.loads(found) == {"deliveries": [], "nextCursor": None}


# Commands that print no data: nothing for --json to shape. render-key is PAGE15's.
NO_DATA = {
    "serve",
    "worker",
    "demo",
    "db upgrade",
    "render-key",
    "destinations delete",
    "projects keys revoke",
}


def _leaves(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from _leaves(command, path + " ")
        else:
            yield path, command


def test_every_command_that_prints_data_takes_json() -> None:
    missing = [
        path
        for path, command in _leaves(main)
        if path not in NO_DATA and not any("--json" in p.opts for p in command.params)
    ]
    assert missing == []


def test_list_commands_print_aligned_tables_with_headers(cli: CliRunner) -> None:
    ok(run(cli, "projects", "create", "a"))
    ok(run(cli, "projects", "create", "a-much-longer-project-name"))
    lines = ok(run(cli, "projects", "list")).splitlines()
    assert lines[0].split() == ["NAME", "ID"]
    # Every row's id starts in the header's ID column.
    column = lines[0].index("ID")
    assert all(re.match(r"[0-9a-f-]{36}$", line[column:]) for line in lines[1:]), lines
    assert len(lines) == 3


def test_destinations_and_keys_tables(cli: CliRunner) -> None:
    ok(run(cli, "projects", "create", "acme"))
    make_destination(cli, "ampersandS3Bucket")
    make_destination(cli, "b")
    lines = ok(run(cli, "destinations", "list")).splitlines()
    assert lines[0].split() == ["NAME", "ID", "BUCKET", "REGION", "STATUS", "DIAGNOSIS"]
    for header in ("ID", "BUCKET", "REGION", "STATUS"):
        at = lines[0].index(header)
        assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines[1:]), lines
    assert [line.split()[0] for line in lines[1:]] == ["ampersandS3Bucket", "b"]
    ok(run(cli, "projects", "keys", "add", "--name", "ci"))
    keys = ok(run(cli, "projects", "keys", "list")).splitlines()
    assert keys[0].split() == ["ID", "PREFIX", "NAME", "CREATED", "LAST", "USED"]
    assert len(keys) == 3 and "never" in keys[2]


def test_table_pads_every_column_but_the_last() -> None:
    rows = [{"a": "x", "b": "long value", "c": None}, {"a": "longer", "b": "y", "c": "z\nmore"}]
    text = table([("a", lambda r: r["a"]), ("b", lambda r: r["b"]), ("c", lambda r: r["c"])], rows)
    assert text.splitlines() == [
        "A       B           C",
        "x       long value  -",
        "longer  y           z",
    ]


def test_project_names_are_unique(cli: CliRunner) -> None:
    ok(run(cli, "projects", "create", "acme"))
    second = run(cli, "projects", "create", "acme")
    assert "exists already" in clean_failure(second)
    assert second.exit_code == 1
    assert json.loads(ok(run(cli, "projects", "list", "--json")))["projects"][0]["name"] == "acme"
    assert len(json.loads(ok(run(cli, "projects", "list", "--json")))["projects"]) == 1
