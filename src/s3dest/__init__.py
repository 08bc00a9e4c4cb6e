"""s3dest: deliver integration data into customers' own S3 buckets.

The public surface for producers and embedders; see README.md for the service itself::

    Client, ApiError                  talk to an s3dest server with a project API key
    IncomingMessage, MessageData,     the message a producer sends, and what it holds
      ResultItem
    KeyTemplate, DEFAULT_KEY_TEMPLATE object keys: compile once, render per message
    S3destError and its subclasses    the one exception tree (drawn in `s3dest.errors`)

Everything else is the service's own and may change between releases.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from s3dest.errors import (
    ApiError,
    Conflict,
    DeliveryError,
    DestinationError,
    InvalidInput,
    KeyRenderError,
    KeyTemplateInvalid,
    ManifestInvalid,
    MessageDeliveryError,
    MessageInvalid,
    NotFound,
    PayloadTooLarge,
    S3destError,
    StorageUnavailable,
    TooBusy,
    TransientDeliveryError,
    Unauthorized,
)

if TYPE_CHECKING:
    from s3dest.client import Client
    from s3dest.keys import DEFAULT_KEY_TEMPLATE, KeyTemplate
    from s3dest.messages import IncomingMessage, MessageData, ResultItem

# Imported on first use: `import s3dest` (and so every CLI command) would otherwise pay for
# httpx and pydantic, about 0.5 s, before doing anything.
_LAZY = {
    "Client": "s3dest.client",
    "DEFAULT_KEY_TEMPLATE": "s3dest.keys",
    "KeyTemplate": "s3dest.keys",
    "IncomingMessage": "s3dest.messages",
    "MessageData": "s3dest.messages",
    "ResultItem": "s3dest.messages",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 's3dest' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "DEFAULT_KEY_TEMPLATE",
    "ApiError",
    "Client",
    "Conflict",
    "DeliveryError",
    "DestinationError",
    "IncomingMessage",
    "InvalidInput",
    "KeyRenderError",
    "KeyTemplate",
    "KeyTemplateInvalid",
    "ManifestInvalid",
    "MessageData",
    "MessageDeliveryError",
    "MessageInvalid",
    "NotFound",
    "PayloadTooLarge",
    "ResultItem",
    "S3destError",
    "StorageUnavailable",
    "TooBusy",
    "TransientDeliveryError",
    "Unauthorized",
    "__version__",
]
