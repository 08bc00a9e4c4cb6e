"""What an amp.yaml may hold: the keys allowed at each level and the values some take.

Schema (``specVersion: 1.0.0``)::

    specVersion: 1.0.0                       required, exactly "1.0.0"
    integrations:                            required, at least one
      - name: salesforceToS3                 required, unique
        displayName: Salesforce to S3
        provider: salesforce                 required
        module: crm
        read:     {objects: [<object>, ...]}  read and/or subscribe: at least one
        subscribe: {objects: [<object>, ...]}
        write: {...}                         stored as given (s3dest does not write)
        proxy: {...}                         stored as given

    <object>:
      objectName: account                    required, unique per action
      destination: ampersandS3Bucket         required: the name of an s3dest destination
      requiredFields / optionalFields:       [{fieldName: x} | {fieldName, mapToName,
                                               mapToDisplayName} | {mapToName, prompt, ...}]
      optionalFieldsAuto: all
      schedule: "*/10 * * * *"
      backfill: {defaultPeriod: {days: 30}} | {defaultPeriod: {fullHistory: true}}
                | {fullHistory: true}
      mapToName, mapToDisplayName, delivery: {mode, pageSize}, enabled
      # subscribe objects also:
      inheritFieldsAndMapping: true
      createEvent / deleteEvent: {enabled: always|never}
      updateEvent: {enabled, watchFieldsAuto: all, requiredWatchFields: [...]}
      associationChangeEvent: {enabled, includeFullRecords}
      otherEvents: [string, ...]
"""

from __future__ import annotations

from typing import Final

SPEC_VERSION: Final = "1.0.0"
#: Most values the document may hold once YAML aliases are expanded (billion laughs).
MAX_VALUES: Final = 200_000

ROOT_KEYS: Final = ("specVersion", "integrations")
INTEGRATION_KEYS: Final = (
    "name",
    "displayName",
    "provider",
    "module",
    "read",
    "subscribe",
    "write",
    "proxy",
)
SECTION_KEYS: Final = ("objects",)
READ_OBJECT_KEYS: Final = (
    "objectName",
    "destination",
    "requiredFields",
    "optionalFields",
    "optionalFieldsAuto",
    "schedule",
    "backfill",
    "mapToName",
    "mapToDisplayName",
    "delivery",
    "enabled",
)
SUBSCRIBE_OBJECT_KEYS: Final = (
    *READ_OBJECT_KEYS,
    "inheritFieldsAndMapping",
    "createEvent",
    "updateEvent",
    "deleteEvent",
    "associationChangeEvent",
    "otherEvents",
)
FIELD_KEYS: Final = (
    "fieldName",
    "mapToName",
    "mapToDisplayName",
    "prompt",
    "default",
    "mappedValues",
)
BACKFILL_KEYS: Final = ("defaultPeriod", "fullHistory")
DEFAULT_PERIOD_KEYS: Final = ("days", "fullHistory")
DELIVERY_KEYS: Final = ("mode", "pageSize")
DELIVERY_MODES: Final = ("auto", "onRequest")
EVENT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "createEvent": ("enabled",),
    "updateEvent": ("enabled", "watchFieldsAuto", "requiredWatchFields"),
    "deleteEvent": ("enabled",),
    "associationChangeEvent": ("enabled", "includeFullRecords"),
}
EVENT_ENABLED: Final = ("always", "never")
