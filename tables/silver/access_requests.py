"""silver.access_requests: one typed row per web request, client addresses and users pseudonymised.

Incremental over bronze.access_logs. Unparsed lines, requests without a status and repeats (the same line
of the same file landed again) go to silver.access_requests_quarantine with the reason; the quarantine
keeps the line with its host, user, query string and IP-looking parts masked.
"""

from lakehouse import table
from lakehouse.transforms.access_requests import mark_rejects, requests_with_outcome, with_request_id


@table(
    "Web requests from the access logs, typed, one row per request; client addresses and users are keyed "
    "hashes (raw values stay in bronze); unparsed lines go to the quarantine table with the reason.",
    keys=["request_id"],
    partition_by=["request_date"],
    quarantine=True,
    mode="incremental",
)
def access_requests(ctx, access_logs):
    published = ctx.current().select("request_id")
    marked = mark_rejects(with_request_id(access_logs, ctx.pseudonym_key), published)
    return requests_with_outcome(marked, ctx.pseudonym_key)
