"""The canonical record's rules."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from models.dossier import AdminLevel, Channel, DossierRecord, LocalityVersion, Status


def fields(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source_system": "tax",
        "source_id": "1",
        "dossier_code": "000.00.06.H56-231027-0361",
        "procedure_code": "2.000477",
        "agency_code": "000.00.06.H56",
        "channel": "online",
        "status": 4,
        "received_at": datetime(2026, 1, 31, 23, 30),
        "source_updated_at": datetime(2026, 2, 1, 9, 0),
    }
    base.update(overrides)
    return base


def errors(**overrides: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        DossierRecord.model_validate(fields(**overrides))
    return [".".join(map(str, e["loc"])) + ": " + e["msg"] for e in caught.value.errors()]


def test_naive_times_are_local_and_stored_in_utc() -> None:
    record = DossierRecord.model_validate(fields())
    assert record.received_at == datetime(2026, 1, 31, 16, 30, tzinfo=UTC)
    assert record.received_at.tzinfo is UTC


def test_aware_times_keep_their_instant() -> None:
    record = DossierRecord.model_validate(fields(received_at="2026-01-31T23:30:00+07:00"))
    assert record.received_at == datetime(2026, 1, 31, 16, 30, tzinfo=UTC)


def test_blank_strings_become_none_and_text_is_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Đăng ký thuế lần đầu")
    record = DossierRecord.model_validate(
        fields(national_dossier_code="   ", procedure_name=f"  {decomposed} ")
    )
    assert record.national_dossier_code is None
    assert record.procedure_name == unicodedata.normalize("NFC", "Đăng ký thuế lần đầu")
    assert record.procedure_name != decomposed


def test_localised_procedure_code_maps_to_the_national_one() -> None:
    record = DossierRecord.model_validate(fields(procedure_code="2.000477.000.00.00.H56"))
    assert record.procedure_code == "2.000477"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"procedure_code": "2.00O477"}, "procedure_code: String should match pattern"),
        ({"agency_code": "H56"}, "agency_code: String should match pattern"),
        ({"dossier_code": "has space 1"}, "dossier_code: String should match pattern"),
        ({"locality_code": "1234"}, "locality_code: String should match pattern"),
        ({"channel": "fax"}, "channel: Input should be"),
        ({"status": 42}, "status: Input should be"),
        ({"received_at": None}, "received_at: Input should be a valid datetime"),
        ({"applicant_key": "001099012345"}, "applicant_key: String should match pattern"),
        ({"procedure_name": "bad\x00name"}, "procedure_name: String should match pattern"),
        ({"finished_at": datetime(2026, 1, 30)}, "finished_at 2026-01-29T17:00:00+00:00 is before"),
        ({"due_at": datetime(2026, 1, 1)}, "due_at 2025-12-31T17:00:00+00:00 is before"),
    ],
)
def test_malformed_values_are_rejected_with_the_field_named(
    override: dict[str, Any], expected: str
) -> None:
    assert any(expected in message for message in errors(**override)), errors(**override)


def test_every_broken_rule_is_reported_at_once() -> None:
    found = errors(procedure_code="x", agency_code="y", channel="fax")
    assert {m.split(":")[0] for m in found} == {"procedure_code", "agency_code", "channel"}


def test_locality_version_follows_the_receipt_date() -> None:
    before = DossierRecord.model_validate(
        fields(locality_code="123", received_at=datetime(2025, 6, 30, 23, 59))
    )
    after = DossierRecord.model_validate(
        fields(locality_code="12345", received_at=datetime(2025, 7, 1, 0, 0))
    )
    assert before.locality_version is LocalityVersion.THREE_LEVEL
    assert after.locality_version is LocalityVersion.TWO_LEVEL


def test_district_level_does_not_exist_after_the_2025_reform() -> None:
    assert any(
        "district does not exist in the two-level unit table" in m
        for m in errors(
            locality_code="123", admin_level="district", received_at=datetime(2025, 8, 1)
        )
    )


def test_enums_parse_from_values() -> None:
    record = DossierRecord.model_validate(fields(admin_level="commune", locality_code="12345"))
    assert record.channel is Channel.ONLINE and record.status is Status.IN_PROGRESS
    assert record.admin_level is AdminLevel.COMMUNE
