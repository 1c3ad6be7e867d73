"""HTTP transport: reads any sector REST API on `requests`, with retries, auth and pagination.

A connector for one REST system subclasses `HttpConnector` and only declares its endpoints,
its auth (`ApiKey` or `OAuth2ClientCredentials`), its pagination (`PageNumber`, `Offset`,
`NextCursor` or `NextLink`), where a response holds its records, and which fields are the id
and the last-change time; then it writes one mapping function. The rest is done here, once:

* `client`: one `requests.Session` per connector, timeouts, bounded bodies, retries with
  `Retry-After` or a jittered backoff, strict JSON; `status`: the one table saying what each
  answer means (done, retry, refresh credentials and send again once, or fail naming the
  setting to fix);
* `auth`: the auth styles, `requests.auth.AuthBase` objects; the OAuth2 one keeps its token
  and fetches a new one on expiry or on a 401;
* `paging`: one class per pagination style, each walking a read page by page;
* `cursor`: the typed, versioned cursor saved with each batch;
* `connector`: `HttpConnector`, the declarations and the read loop.

**Pages.** A page is JSON in UTF-8 (NaN and Infinity are kept as text) with a list of objects
at `records_path`, each with a usable id and a readable last-change time, in the API's order
and no more than asked for; any other page is fatal, since no cursor could step past it. A
page repeating an id delivers only its last (newest) version.

**Incremental reads.** The API filters by last change (`updated_since`, inclusive) and
orders by (last change, id); the transport checks the order on every page. The cursor after
each batch is the key of its last record (`HttpCursor`). A resumed read asks for the records
changed since that time and drops those at or before the key, so records sharing one time
across a batch boundary are neither lost nor repeated; with a look-back window it starts
that much earlier and keeps everything (upserts make the overlap harmless). A record whose
change time lies past now + the future tolerance never moves the cursor.

Secrets are `SecretStr` settings, sent only in headers or a POST body: never in a URL, a
message, a log line or a `repr`.
"""

from connectors.http.auth import ApiKey, OAuth2ClientCredentials, SourceAuth
from connectors.http.client import HttpClient, JsonResponse
from connectors.http.connector import HttpConnector
from connectors.http.cursor import HttpCursor
from connectors.http.paging import (
    ContinuationPaging,
    NextCursor,
    NextLink,
    Offset,
    PageNumber,
    Pagination,
    PositionalPaging,
)
from connectors.http.settings import ApiKeySettings, HttpSettings, OAuth2Settings
from connectors.http.status import RETRIABLE_STATUS, RULES, Action, Rule

__all__ = [
    "RETRIABLE_STATUS",
    "RULES",
    "Action",
    "ApiKey",
    "ApiKeySettings",
    "ContinuationPaging",
    "HttpClient",
    "HttpConnector",
    "HttpCursor",
    "HttpSettings",
    "JsonResponse",
    "NextCursor",
    "NextLink",
    "OAuth2ClientCredentials",
    "OAuth2Settings",
    "Offset",
    "PageNumber",
    "Pagination",
    "PositionalPaging",
    "Rule",
    "SourceAuth",
]
