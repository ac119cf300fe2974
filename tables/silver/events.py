"""silver.events: the application's events, typed, deduplicated on event_id, the user pseudonymised.

Incremental: each run reads only the lines bronze.app_events gained since the last one. Bad lines
(invalid JSON, missing or mistyped fields, unknown event types) and repeats of an event already seen go to
silver.events_quarantine with the reason; the quarantine keeps the line with the user id pseudonymised.
"""

from lakehouse import table
from lakehouse.transforms.events import events_with_outcome, mark_duplicates, parse_app_events


@table(
    "Application events, typed and deduplicated on event_id.",
    keys=["event_id"],
    partition_by=["event_date"],
    properties={"delta.enableChangeDataFeed": "true"},
    quarantine=True,
    mode="incremental",
)
def events(ctx, app_events):
    published = ctx.current().select("event_id")
    marked = mark_duplicates(parse_app_events(app_events), published)
    return events_with_outcome(marked, ctx.pseudonym_key)
