"""Example integration: comment on every file that finishes transcoding, and a two-step "Request review" action.

Run it on a laptop (no Redis or Docker needed, a redis-server binary on PATH is enough):

    frameio-kit dev examples.review_bot:app
    frameio-kit send file.ready
    frameio-kit send review.request --action

With FRAMEIO_TOKEN set to a Frame.io API token the webhook posts a real comment; without it the
handler only logs what it would have posted.
"""

from __future__ import annotations

import logging
import os

from frameio.comments import CreateCommentParamsData

from frameio_kit import (
    ActionEvent,
    App,
    Form,
    Message,
    SelectField,
    SelectOption,
    TextareaField,
    TextField,
    WebhookEvent,
)

logger = logging.getLogger("examples.review_bot")

# Example code may read its own configuration however it likes; frameio-kit itself reads
# WEBHOOK_SECRET and CUSTOM_ACTION_SECRET from the environment.
TOKEN = os.environ.get("FRAMEIO_TOKEN")
REVIEWERS = [SelectOption(name="Ana (editor)", value="ana"), SelectOption(name="Ben (colorist)", value="ben")]

app = App(token=TOKEN)


@app.on_webhook("file.ready")
async def comment_when_ready(event: WebhookEvent) -> None:
    """Runs on a worker, after the ingress has answered Frame.io: slow API calls are fine here."""
    text = "Transcoding finished: this file is ready for review."
    if TOKEN is None:
        logger.info("file %s is ready; would comment %r (set FRAMEIO_TOKEN to post)", event.resource_id, text)
        return
    await app.client.comments.create(
        account_id=event.account_id, file_id=event.resource_id, data=CreateCommentParamsData(text=text)
    )
    logger.info("commented on file %s", event.resource_id)


@app.on_action("review.request", name="Request review", description="Ask a teammate to review this file")
async def request_review(event: ActionEvent) -> Form | Message:
    """Answered by the ingress within Frame.io's 5 s: three calls share one interaction_id.

    1st call (no data): pick a reviewer. 2nd (data has "reviewer"): add notes; the reviewer is
    carried forward pre-filled, so no server-side state is needed. 3rd (data has "notes"): done.
    """
    data = event.data or {}
    if "reviewer" not in data:
        return Form(
            title="Request review",
            description="Step 1 of 2: who should review this file?",
            fields=[SelectField(label="Reviewer", name="reviewer", options=REVIEWERS)],
        )
    reviewer = str(data["reviewer"])
    if reviewer not in {option.value for option in REVIEWERS}:
        return Message(title="Unknown reviewer", description="Pick a reviewer from the list and try again.")
    if "notes" not in data:
        return Form(
            title="Request review",
            description="Step 2 of 2: anything they should look at?",
            fields=[
                TextField(label="Reviewer", name="reviewer", value=reviewer),
                TextareaField(label="Notes", name="notes", value=""),
            ],
        )
    logger.info("review of %s requested from %s", event.resource_id, reviewer)
    return Message(title="Review requested", description=f"{reviewer} will review this file.")
