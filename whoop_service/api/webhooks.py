"""`POST /webhooks/whoop`: verify, store once per trace id, answer at once, process later."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.contracts import WebhookReceipt
from shared.errors import Unauthorized, ValidationFailed
from shared.problems import problem_responses
from whoop_service.webhooks import intake
from whoop_service.webhooks.verify import (
    EventMalformed,
    SignatureRejected,
    parse_event,
    verify,
)

log = structlog.get_logger()
router = APIRouter(tags=["webhooks"])


@router.post(
    "/webhooks/whoop",
    status_code=202,
    response_model=WebhookReceipt,
    responses=problem_responses(
        401,
        413,
        422,
        descriptions={
            401: "Unsigned, wrongly signed or stale (`invalid_signature`).",
            413: "The body is over 64 KiB (`payload_too_large`).",
            422: "Signed, but not a WHOOP event.",
        },
    ),
)
async def whoop_webhook(request: Request) -> JSONResponse:
    """A WHOOP event: 202 once stored (or seen before); 401 unsigned or stale; 422 malformed."""
    settings = request.app.state.settings
    # At most 64 KiB: shared.bodylimit refused anything larger before this route ran.
    body = await request.body()
    if settings.whoop_client_secret is None:
        raise Unauthorized("Webhooks are not configured.", code="invalid_signature")
    try:
        verify(
            body,
            request.headers.get("X-WHOOP-Signature-Timestamp"),
            request.headers.get("X-WHOOP-Signature"),
            settings.whoop_client_secret.get_secret_value(),
            now_ms=int(request.app.state.clock().timestamp() * 1000),
            tolerance_s=settings.webhook_tolerance_s,
        )
    except SignatureRejected as exc:
        log.warning("whoop.webhook.rejected", reason=str(exc))
        raise Unauthorized(
            "The webhook signature is not valid.", code="invalid_signature"
        ) from None
    try:
        event = parse_event(body)
    except EventMalformed as exc:
        raise ValidationFailed.for_field(
            "", str(exc), location="body", detail="The webhook is not a WHOOP event."
        ) from None
    new = await intake.take_in(
        request.app.state.sessions, event, request.app.state.clock()
    )
    if new:
        request.app.state.worker.notify()
    log.info("whoop.webhook.received", type=event.type, duplicate=not new)
    return JSONResponse({"status": "accepted" if new else "duplicate"}, status_code=202)
