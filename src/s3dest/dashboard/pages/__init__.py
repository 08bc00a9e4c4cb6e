"""The dashboard's pages, one module each, and `routers` in the order they are mounted.

Every operation goes through the same services as the REST API (destinations.service,
keys, delivery.service, manifest.service, access); a page only turns forms into their
inputs and their results into HTML.
"""

from __future__ import annotations

from fastapi import APIRouter

from s3dest.dashboard.pages import (
    access,
    auth,
    deliveries,
    destination_form,
    destination_test,
    destinations,
    manifest,
    webhooks,
)

routers: tuple[APIRouter, ...] = (
    auth.router,
    destinations.router,
    destination_form.router,
    destination_test.router,
    deliveries.router,
    manifest.router,
    access.router,
    webhooks.router,
)
