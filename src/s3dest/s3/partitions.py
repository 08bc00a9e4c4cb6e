"""AWS partitions (aws, aws-us-gov, aws-cn, and the isolated ones botocore knows): which
regions exist and where their S3 is.

The regions and DNS suffixes are botocore's (its partitions data, updated with each
release), not a list kept here. A destination without endpointUrl must name a region of
a partition; with endpointUrl, any region string its store expects.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

SUPPORTED = ("aws", "aws-us-gov", "aws-cn")  # named in messages; the others work too


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    dns_suffix: str  # amazonaws.com, amazonaws.com.cn
    regions: frozenset[str]


@functools.cache
def partitions() -> tuple[Partition, ...]:
    # partitions.json, not endpoints.json: the same regions and suffixes in a tenth of the
    # memory (endpoints.json lists every service's endpoints).
    from botocore.loaders import Loader  # imported when first needed: ~0.3 s CPU

    data = Loader().load_data("partitions")
    return tuple(
        Partition(
            p["id"],
            p["outputs"]["dnsSuffix"],
            frozenset(r for r in p["regions"] if not r.endswith("-global")),
        )
        for p in data["partitions"]
    )


def partition_of(region: str) -> Partition | None:
    for partition in partitions():
        if region in partition.regions:
            return partition
    return None


def arn_partition(region: str) -> str:
    """The partition an ARN names for `region` (arn:aws-cn:s3:::bucket/* in China): a
    policy written with arn:aws: for a China or GovCloud bucket grants nothing there."""
    partition = partition_of(region)
    return partition.name if partition else "aws"


def s3_host(region: str) -> str:
    """S3's regional host name (the partition's DNS suffix; aws when it is unknown)."""
    partition = partition_of(region)
    return f"s3.{region}.{partition.dns_suffix if partition else 'amazonaws.com'}"


def virtual_hosted(bucket: str) -> bool:
    """Virtual-hosted addressing on AWS, except for names with dots: over HTTPS,
    `a.b.s3.<region>.amazonaws.com` does not match S3's wildcard certificate."""
    return "." not in bucket
