"""s3dest: deliver integration data into customers' own S3 buckets.

The public surface for producers and embedders; see README.md for the service itself.
"""

from __future__ import annotations

from s3dest.client import ApiError, Client
from s3dest.errors import (
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
    S3destError,
    StorageUnavailable,
    TransientDeliveryError,
)
from s3dest.keys import DEFAULT_KEY_TEMPLATE, KeyTemplate
from s3dest.messages import IncomingMessage, MessageData, ResultItem

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
    "ResultItem",
    "S3destError",
    "StorageUnavailable",
    "TransientDeliveryError",
    "__version__",
]
