"""What a manifest names outside itself: every destination must exist in the project."""

from __future__ import annotations

from collections.abc import Callable

from s3dest.manifest.checks import join
from s3dest.manifest.model import Manifest
from s3dest.manifest.problems import Problem, raise_problems


def validate_destinations(manifest: Manifest, exists: Callable[[str], bool]) -> None:
    """Raise ManifestInvalid naming, with its line, every destination that does not exist.

    `exists` is asked once per distinct name.
    """
    known: dict[str, bool] = {}
    problems: list[Problem] = []
    for obj in manifest.objects():
        if obj.destination not in known:
            known[obj.destination] = bool(exists(obj.destination))
        if not known[obj.destination]:
            problems.append(
                Problem(
                    join(obj.path, "destination"),
                    obj.destination_line,
                    obj.destination_column,
                    f"destination {obj.destination!r} does not exist in this project;"
                    " create it first or fix the name",
                )
            )
    raise_problems(problems)
