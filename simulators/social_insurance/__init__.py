"""Social Insurance (BHXH): the provincial social insurance REST service, in its own shape.

Social Insurance handles its dossiers in the national BHXH software and exposes them through a
REST API. Its native shape, which nothing here translates (that is the job of
`connectors/social_insurance.py`):

* camelCase Vietnamese field names (soHoSo, maThuTuc, ngayTiepNhan, trangThai, maSoBhxh, ...);
* ISO 8601 local times with their offset, `2026-03-01T08:30:00+07:00`;
* its own dossier numbers `{office}/{year}/{sequence}`, e.g. `56001/2026/07906`;
* 3-digit procedure codes ("601") and 5-digit office codes ("56001") of its own, where the
  province uses national procedure codes (1.001234) and electronic agency ids (000.00.15.H56);
* its own status and channel words (dangXuLy, daTraKetQua; dienTu, trucTiep, buuChinh);
* mostly online intake (`scenario.ONLINE_SHARE`), and for citizens the applicant's 10-digit
  social insurance number (personal data).

The API:

* `POST /oauth2/token` — OAuth2 client credentials (form body or HTTP Basic); tokens expire
  after `token_lifetime` seconds;
* `GET /api/v1/dossiers?updatedSince=&limit=&cursor=` — records changed at or after
  `updatedSince`, ordered by (ngayCapNhat, id), `{"data": [...], "nextCursor": ...}`; the
  cursor is an opaque keyset position, so changes during a read shift nothing;
* `GET /api/v1/dossiers/count?receivedFrom=&receivedTo=` — dossiers received on local days
  `receivedFrom <= day < receivedTo` (all without the parameters), `{"total": n}`;
* a rate limit (`requests_per_second`) answering 429 with `Retry-After`.

`generate` draws the dossiers from a seed; `SocialInsuranceApi` serves them (with the faults
of `simulators.http_server`) and changes them (`touch`); `serve` runs it as a process.

The package's modules: `schema` (endpoints, vocabulary, procedures), `defects` (the
malformed records it plants), `generation` (`generate`) and `api` (the service and `serve`).
"""

from __future__ import annotations

from models.localtime import LOCAL  # the zone of every time Social Insurance writes
from simulators.social_insurance.api import SocialInsuranceApi, serve
from simulators.social_insurance.defects import DEFECT_KINDS
from simulators.social_insurance.generation import Truth, generate
from simulators.social_insurance.schema import (
    ACCEPTED,
    CHANNELS,
    CITIZEN,
    COMMUNES_THREE_LEVEL,
    COMMUNES_TWO_LEVEL,
    COUNT_PATH,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DISTRICT_OFFICES,
    DISTRICTS,
    DOSSIERS_PATH,
    END,
    ENTERPRISE,
    FORWARDED,
    FULL,
    IN_PERSON,
    IN_PROGRESS,
    LAST,
    MAX_LIMIT,
    NEXT_STATUS,
    OFFICES,
    OFFLINE,
    ONLINE,
    OTHER,
    PARTIAL,
    POSTAL,
    PROCEDURES,
    PROVINCE,
    PROVINCE_OFFICE,
    REFUSED,
    RESOLVED,
    RETURNED,
    START,
    STATE_BODY,
    STATUSES,
    STOPPED,
    SUPPLEMENT,
    TOKEN_PATH,
    TWO_LEVEL_FROM,
    WAITING,
    WITHDRAWN,
    Procedure,
    timestamp,
)

__all__ = [
    "ACCEPTED",
    "CHANNELS",
    "CITIZEN",
    "COMMUNES_THREE_LEVEL",
    "COMMUNES_TWO_LEVEL",
    "COUNT_PATH",
    "DEFECT_KINDS",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DISTRICTS",
    "DISTRICT_OFFICES",
    "DOSSIERS_PATH",
    "END",
    "ENTERPRISE",
    "FORWARDED",
    "FULL",
    "IN_PERSON",
    "IN_PROGRESS",
    "LAST",
    "LOCAL",
    "MAX_LIMIT",
    "NEXT_STATUS",
    "OFFICES",
    "OFFLINE",
    "ONLINE",
    "OTHER",
    "PARTIAL",
    "POSTAL",
    "PROCEDURES",
    "PROVINCE",
    "PROVINCE_OFFICE",
    "REFUSED",
    "RESOLVED",
    "RETURNED",
    "START",
    "STATE_BODY",
    "STATUSES",
    "STOPPED",
    "SUPPLEMENT",
    "TOKEN_PATH",
    "TWO_LEVEL_FROM",
    "WAITING",
    "WITHDRAWN",
    "Procedure",
    "SocialInsuranceApi",
    "Truth",
    "generate",
    "serve",
    "timestamp",
]
