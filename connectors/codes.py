"""Code tables and identifier shapes that several sector systems share.

The national lists (the ten status codes, KenhThucHien channels, applicant codes 1-4) and the
legacy service levels of Decree 43/2011 are the same wherever a system writes them as numbers;
a connector uses these tables instead of writing them again. A system with codes of its own
for a channel, service level or applicant type names them with `channels`,
`service_levels` and `applicant_types`; only its status tables are written out.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.mapping import Identifier
from models.dossier import ApplicantType, Channel, ServiceLevel, Status


def channels(*, in_person: Any, online: Any, postal: Any) -> dict[Any, Channel]:
    """A system's own channel codes: the code it writes for each channel."""
    return {in_person: Channel.IN_PERSON, online: Channel.ONLINE, postal: Channel.POSTAL}


def service_levels(*, full: Any, partial: Any, not_online: Any) -> dict[Any, ServiceLevel]:
    """A system's own service-level codes: the code for each level of Decree 42/2022."""
    return {
        full: ServiceLevel.FULL_ONLINE,
        partial: ServiceLevel.PARTIAL_ONLINE,
        not_online: ServiceLevel.NOT_ONLINE,
    }


def applicant_types(
    *, citizen: Any, enterprise: Any, state_body: Any, other: Any
) -> dict[Any, ApplicantType]:
    """A system's own applicant codes: the code for each applicant type."""
    return {
        citizen: ApplicantType.CITIZEN,
        enterprise: ApplicantType.ENTERPRISE,
        state_body: ApplicantType.STATE_BODY,
        other: ApplicantType.OTHER_ORGANISATION,
    }


# The ten shared status codes (TrangThaiHoSo 1-10).
SHARED_STATUS = {int(status): status for status in Status}
# KenhThucHien: 1 in person, 2 online, 3 post.
SHARED_CHANNEL = {code: Channel.from_code(code) for code in (1, 2, 3)}
# The shared applicant codes 1-4.
SHARED_APPLICANT = {code: ApplicantType.from_code(code) for code in (1, 2, 3, 4)}
# Legacy levels 4 (toàn trình), 3 (một phần), 2 (not online), mapped onto Decree 42/2022.
LEGACY_SERVICE_LEVEL = {
    4: ServiceLevel.FULL_ONLINE,
    3: ServiceLevel.PARTIAL_ONLINE,
    2: ServiceLevel.NOT_ONLINE,
}

# 10-digit tax code, 13-digit branch code (0101234567-001, dash optional), 12-digit citizen ID.
TAX_CODE_OR_CITIZEN_ID = re.compile(r"\d{10}(?:-?\d{3})?|\d{12}")


def tax_code_or_citizen_id(column: str) -> Identifier:
    """The applicant's tax code, branch tax code or citizen ID in `column`, hashed at once
    (ASCII digits only, as every `Identifier`)."""
    return Identifier(
        column,
        TAX_CODE_OR_CITIZEN_ID,
        "a 10-digit tax code, a 13-digit branch tax code (0101234567-001) or a 12-digit citizen ID",
    )
