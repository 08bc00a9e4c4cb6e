"""Sample documents: the product page's amp.yaml, manifests of one integration, and the
Salesforce records the page's examples use."""

from __future__ import annotations

from collections.abc import Mapping

# The destination name the product page uses throughout.
DESTINATION = "ampersandS3Bucket"

# Copied literally from reference/s3-destination-doc.txt ("Refer to the destination in
# your integration").
PAGE_AMP_YAML = """\
specVersion: 1.0.0
integrations:
  - name: salesforceToS3
    displayName: Salesforce to S3
    provider: salesforce
    read:
      objects:
        - objectName: account
          destination: ampersandS3Bucket
        - objectName: contact
          destination: ampersandS3Bucket
"""


def amp_yaml(
    name: str,
    provider: str,
    objects: Mapping[str, str],
    *,
    display_name: str | None = None,
    required_fields: Mapping[str, list[str]] | None = None,
) -> str:
    """An amp.yaml of one integration that reads `objects` (object name -> destination),
    optionally with required fields per object. `amp_yaml("salesforceToS3", "salesforce",
    {"account": DESTINATION, "contact": DESTINATION}, display_name="Salesforce to S3")` is
    the page's."""
    lines = ["specVersion: 1.0.0", "integrations:", f"  - name: {name}"]
    if display_name is not None:
        lines.append(f"    displayName: {display_name}")
    lines += [f"    provider: {provider}", "    read:", "      objects:"]
    for object_name, destination in objects.items():
        lines += [f"        - objectName: {object_name}", f"          destination: {destination}"]
        fields = (required_fields or {}).get(object_name)
        if fields:
            lines.append("          requiredFields:")
            lines += [f"            - fieldName: {field}" for field in fields]
    return "\n".join(lines) + "\n"


# The page's Salesforce records (raw, as the SaaS API returns them).
ACCOUNT = {
    "attributes": {
        "type": "Account",
        "url": "/services/data/v59.0/sobjects/Account/001Dp00000ZDgmxIAD",
    },
    "Id": "001Dp00000ZDgmxIAD",
    "Name": "Acme Corp",
    "AnnualRevenue": 1200000,
    "Website": "https://acme.example.com",
}
CONTACT = {
    "attributes": {
        "type": "Contact",
        "url": "/services/data/v59.0/sobjects/Contact/003Dp000004XyZ1IAK",
    },
    "Id": "003Dp000004XyZ1IAK",
    "FirstName": "Maria",
    "LastName": "Johnson",
    "Email": "maria@example.com",
    "AccountId": "001Dp00000ZDgmxIAD",
}
