"""s3dest: deliver integration data into customers' own S3 buckets."""

from __future__ import annotations

__version__ = "0.1.0"
