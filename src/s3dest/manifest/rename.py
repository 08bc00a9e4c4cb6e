"""A destination's routes in amp.yaml, and the same amp.yaml with the destination renamed.

Renaming a destination that amp.yaml routes to would strand every routed message (each
refused with 422), and amp.yaml cannot name the new name first: every destination it
names must exist. So a rename rewrites amp.yaml in the same transaction. Only the
``destination:`` values that name the old destination change, in place, byte for byte
around them (comments, order and quoting kept); the result is parsed again and must
route exactly as before, to the new name.
"""

from __future__ import annotations

from dataclasses import dataclass

from s3dest.errors import Conflict, ManifestInvalid
from s3dest.manifest.model import Manifest, ManifestObject
from s3dest.manifest.parse import parse_manifest


@dataclass(frozen=True, slots=True)
class Route:
    integration: str
    action: str
    object_name: str
    line: int

    @property
    def label(self) -> str:
        return f"{self.integration} {self.action} {self.object_name}"


def routes_to(manifest: Manifest, name: str) -> list[Route]:
    """The (integration, action, objectName) routes of the manifest to destination `name`."""
    return [
        Route(integ.name, obj.action, obj.object_name, obj.destination_line)
        for integ in manifest.integrations
        for obj in integ.objects()
        if obj.destination == name
    ]


def _replace(line: str, column: int, old: str, new: str, *, quote: bool) -> str | None:
    """`line` with the scalar `old` at 0-based `column` replaced by `new` (None: the text
    there is not `old` as written, e.g. an alias)."""
    mark = line[column : column + 1]
    if mark in ("'", '"'):
        inner = column + 1
        if line[inner : inner + len(old) + 1] != old + mark or mark in new or "\\" in new:
            return None
        return line[:inner] + new + line[inner + len(old) :]
    if line[column : column + len(old)] != old:
        return None
    after = line[column + len(old) : column + len(old) + 1]
    if after and after not in " \t\r\n,}]#":
        return None
    written = f"'{new}'" if quote else new
    return line[:column] + written + line[column + len(old) :]


def _rewrite(text: str, targets: list[ManifestObject], old: str, new: str, *, quote: bool) -> str:
    lines = text.splitlines(keepends=True)
    # Last first: a replacement never moves the position of one still to do.
    for obj in sorted(
        targets, key=lambda o: (o.destination_line, o.destination_column), reverse=True
    ):
        index = obj.destination_line - 1
        replaced = _replace(lines[index], obj.destination_column - 1, old, new, quote=quote)
        if replaced is None:
            raise Conflict(
                f"amp.yaml names destination {old!r} at line {obj.destination_line} in a form "
                "s3dest does not rewrite (an anchor, an alias or a multi-line value?): write "
                f"the name {old!r} plainly on that line, upload amp.yaml, then rename again"
            )
        lines[index] = replaced
    return "".join(lines)


def rename_destination(text: str, old: str, new: str) -> tuple[str, list[Route]]:
    """amp.yaml with every route to `old` routed to `new`, and those routes. Raises
    Conflict (naming the line) when a reference cannot be rewritten safely."""
    manifest = parse_manifest(text)
    routes = routes_to(manifest, old)
    if not routes or old == new:
        return text, routes
    targets = [obj for obj in manifest.objects() if obj.destination == old]
    expected = [new if obj.destination == old else obj.destination for obj in manifest.objects()]
    for quote in (False, True):  # quoted when the new name would read as a number
        rewritten = _rewrite(text, targets, old, new, quote=quote)
        try:
            again = parse_manifest(rewritten)
        except ManifestInvalid:  # e.g. a name YAML reads as a number: quote it, or refuse
            continue
        if [obj.destination for obj in again.objects()] == expected:
            return rewritten, routes
    raise Conflict(
        f"amp.yaml routes {', '.join(r.label for r in routes)} to {old!r} and could not be "
        f"rewritten to {new!r} safely; edit amp.yaml and the name together"
    )
