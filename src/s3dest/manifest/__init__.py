"""The amp.yaml manifest: parse, validate with line numbers, route messages.

``parse_manifest`` reads an amp.yaml (or the same document as JSON), checks it against
the schema (`schema`) and returns a `Manifest`. Every problem is reported — all of them, in
one `ManifestInvalid` — with the 1-based line and column it sits at::

    amp.yaml line 7, column 11: unknown key 'destinaton' in integrations[0].read.objects[0];
    allowed: objectName, destination, ...

Routing: ``manifest.route(integration, action, objectName)`` is a dict lookup returning
the destination name and the lower-cased field names the object selects (`routing`).

One job per module, imported in this order (each only from those above it)::

    schema      the keys allowed at each level, the values some take
    model       Manifest, Integration, ManifestObject, FieldRef, RouteTarget
    problems    a problem at a line and column; the one ManifestInvalid holding all
    source      bytes -> text -> YAML tree with positions; cheap refusals
    routing     the fields an object selects; the route table
    checks      the typed checks every part is made of, collecting problems
    objects     one read / subscribe object
    document    the top level, integrations, sections
    parse       parse_manifest: source + document checks
    references  validate_destinations: every destination named exists
    service     apply / check / read a project's manifest (the store; not re-exported
                here, so that importing the parser never imports the database layer)
"""

from s3dest.manifest.model import FieldRef, Integration, Manifest, ManifestObject, RouteTarget
from s3dest.manifest.parse import parse_manifest
from s3dest.manifest.references import validate_destinations
from s3dest.manifest.schema import SPEC_VERSION

__all__ = [
    "SPEC_VERSION",
    "FieldRef",
    "Integration",
    "Manifest",
    "ManifestObject",
    "RouteTarget",
    "parse_manifest",
    "validate_destinations",
]
