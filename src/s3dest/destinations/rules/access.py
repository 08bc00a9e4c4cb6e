"""Rules for how a destination signs in (SPEC §8): access keys, or an IAM role that
s3dest assumes — exactly one of the two."""

from __future__ import annotations

import re
from typing import Any

from s3dest.destinations.rules._text import Bad, optional_text

# arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME. IAM allows these characters in role names
# and paths; anything else (spaces, quotes, wildcards) is refused rather than sent to STS.
_ROLE_ARN_RE = re.compile(
    r"arn:(?P<partition>aws|aws-us-gov|aws-cn):iam::(?P<account>\d{12}):role/"
    r"(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,64})",
    re.ASCII,
)
_ROLE_ARN_MAX = 2048
#: The region prefix each partition's regions have.
_PARTITION_REGIONS = {"aws-us-gov": "us-gov-", "aws-cn": "cn-"}
ROLE_ARN_EXAMPLE = "arn:aws:iam::123456789012:role/s3dest-writer"


def check_role_arn(value: Any) -> str | None:
    text = optional_text("roleArn", value)
    if text is None:
        return None
    if len(text) > _ROLE_ARN_MAX or not _ROLE_ARN_RE.fullmatch(text):
        raise Bad(
            "roleArn must be an IAM role's ARN, arn:aws:iam::<12-digit account id>:role/"
            f"<name> (or arn:aws-us-gov:… / arn:aws-cn:…), e.g. {ROLE_ARN_EXAMPLE}; copy it "
            "from the role's summary in the IAM console. The value given is not one."
        )
    return text


def check_role_region(role_arn: str, region: str, aws: bool) -> None:
    """A role of one AWS partition signs for that partition's regions only."""
    found = _ROLE_ARN_RE.fullmatch(role_arn)
    if not aws or found is None:
        return
    partition = found.group("partition")
    prefix = _PARTITION_REGIONS.get(partition)
    in_partition = (
        region.startswith(prefix)
        if prefix
        else not any(region.startswith(p) for p in _PARTITION_REGIONS.values())
    )
    if not in_partition:
        raise Bad(
            f"roleArn is a role of the {partition!r} partition, but region {region!r} is "
            "not in it; use the role and the bucket of one partition."
        )


def check_one_way_in(
    role_arn: str | None, key_given: bool, secret_given: bool, token_given: bool
) -> None:
    """Exactly one of keys or role."""
    if role_arn is not None and (key_given or secret_given or token_given):
        raise Bad(
            "roleArn and access keys were both given; give one: with roleArn s3dest assumes "
            "the role, so remove accessKeyId, secretAccessKey and sessionToken (in an "
            "update, set them to null)."
        )
