"""`POST /webhooks/whoop`: relayed to the WHOOP service with its bytes and headers unchanged.

The signature covers the raw body, so nothing here parses or re-encodes it; the WHOOP service
verifies it. Bodies over 64 KiB never get here (`shared.bodylimit` refuses them before any
route). The answer is the service's, so WHOOP retries exactly when the service failed.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.deps import WhoopServiceDep
from shared.contracts import WebhookReceipt
from shared.errors import AppError
from shared.problems import problem_responses

router = APIRouter(tags=["webhooks"])

# WHOOP wants an answer within about a second; the service stores the event and answers at once.
RELAY_DEADLINE_S = 5.0
RELAYED_HEADERS = ("content-type", "x-whoop-signature", "x-whoop-signature-timestamp")


@router.post(
    "/webhooks/whoop",
    status_code=202,
    responses={
        202: {"model": WebhookReceipt},
        **problem_responses(
            401,
            413,
            422,
            502,
            descriptions={
                401: "Unsigned, badly signed or stale (`invalid_signature`).",
                413: "The body is over 64 KiB (`payload_too_large`).",
                422: "Signed, but not a WHOOP event.",
                502: "The WHOOP service is unavailable (`whoop_service_unavailable`).",
            },
        ),
    },
)
async def whoop_webhook(request: Request, whoop: WhoopServiceDep) -> Response:
    """Relay a WHOOP webhook to the WHOOP service."""
    # At most 64 KiB: shared.bodylimit refused anything larger before this route ran.
    body = await request.body()
    headers = {k: v for k, v in request.headers.items() if k.lower() in RELAYED_HEADERS}
    if not all(v.isascii() for v in headers.values()):
        # WHOOP's signature and timestamp are ASCII; anything else is not from WHOOP.
        raise AppError(
            "The webhook signature is not valid.", code="invalid_signature", status=401
        )
    resp = await whoop.relay(
        "/webhooks/whoop", body, headers, deadline=time.monotonic() + RELAY_DEADLINE_S
    )
    return Response(
        content=resp.content,
        status_code=resp.status_code,
        media_type=resp.headers.get("content-type"),
    )
