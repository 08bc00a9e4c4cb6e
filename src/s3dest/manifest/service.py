"""Apply and read a project's amp.yaml (shared by the API, the CLI and the dashboard)."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Engine

from s3dest.access import audit
from s3dest.access.audit import Actor
from s3dest.errors import ManifestInvalid, NotFound
from s3dest.manifest.model import Manifest
from s3dest.manifest.parse import parse_manifest
from s3dest.manifest.references import validate_destinations
from s3dest.manifest.rename import Route, routes_to
from s3dest.manifest.source import source_text
from s3dest.store.destinations import destination_names
from s3dest.store.engine import atomic
from s3dest.store.manifests import load_source, save_source


def check_manifest(engine: Engine, project_id: str, source: str | bytes) -> Manifest:
    """Syntax, schema, and every destination it names exists in the project."""
    manifest = parse_manifest(source_text(source))
    names = destination_names(engine, project_id)
    validate_destinations(manifest, lambda name: name in names)
    return manifest


def apply_manifest(
    engine: Engine, project_id: str, source: str | bytes, *, actor: Actor
) -> dict[str, Any]:
    text = source_text(source)
    manifest = check_manifest(engine, project_id, text)
    with atomic(engine):
        before = load_source(engine, project_id)
        save_source(engine, project_id, text)
        audit.record(
            engine,
            actor,
            project_id=project_id,
            action="manifest.applied",
            target="manifest",
            changes={
                "bytes": len(text.encode()),
                "sha256": _sha256(text),
                "previousSha256": None if before is None else _sha256(before),
            },
        )
    return manifest.to_dict()


def routes_by_destination(engine: Engine, project_id: str) -> dict[str, list[Route]]:
    """destination name → the amp.yaml routes to it (empty without an amp.yaml)."""
    source = load_source(engine, project_id)
    if source is None:
        return {}
    try:
        manifest = parse_manifest(source)
    except ManifestInvalid:  # saved before a stricter check: the Manifest page says why
        return {}
    found: dict[str, list[Route]] = {}
    for name in manifest.destination_names():
        found[name] = routes_to(manifest, name)
    return found


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def current_manifest(engine: Engine, project_id: str) -> str:
    source = load_source(engine, project_id)
    if source is None:
        raise NotFound("this project has no amp.yaml yet; PUT /v1/manifest to upload one")
    return source
