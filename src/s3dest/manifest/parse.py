"""``parse_manifest``: amp.yaml text (or bytes, or the same document as JSON) to a
validated `Manifest`, or one `ManifestInvalid` listing every problem with its line."""

from __future__ import annotations

from s3dest.manifest.checks import Checks
from s3dest.manifest.document import check_document
from s3dest.manifest.model import Manifest
from s3dest.manifest.problems import one_problem, raise_problems
from s3dest.manifest.source import check_text, load, source_text


def parse_manifest(text: str | bytes) -> Manifest:
    """Parse and validate an amp.yaml (YAML or JSON); raise ManifestInvalid listing every
    problem with its line and column."""
    text = source_text(text)
    check_text(text)
    document = load(text)
    checks = Checks()
    manifest = check_document(checks, document, text)
    raise_problems(checks.problems)
    if manifest is None:  # pragma: no cover - every None comes with a problem
        raise one_problem("manifest", 1, 1, "invalid manifest")
    return manifest
