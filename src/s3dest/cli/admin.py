"""`s3dest db` and `s3dest secrets`: maintenance of the database and the stored secrets."""

from __future__ import annotations

import click

from s3dest.cli import common


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations (also done on every start)."""
    common.engine()
    click.echo("database is up to date")


@click.group()
def secrets() -> None:
    """Encryption keys of stored credentials."""


@secrets.command("rotate")
@click.option(
    "--new-key",
    is_flag=True,
    help="add a new key to the key file first (when keys come from the file)",
)
@common.json_option
def secrets_rotate(new_key: bool, as_json: bool) -> None:
    """Re-encrypt every stored secret under the newest key."""
    from s3dest.destinations import service
    from s3dest.destinations.secrets import add_key_to_file
    from s3dest.runtime import open_box

    settings = common.settings()
    if new_key:
        if settings.secret_key:
            raise click.UsageError(
                "keys come from S3DEST_SECRET_KEY: put a new key first in that list instead"
            )
        added = add_key_to_file(settings.data_dir)
        if not as_json:
            click.echo(f"added key {added}")
    box = open_box(settings)
    changed = service.rotate_secrets(common.engine(), box)
    if as_json:
        common.print_json({"reencrypted": changed, "keyId": box.primary_key_id})
    else:
        click.echo(f"re-encrypted {changed} destination(s) under key {box.primary_key_id}")
