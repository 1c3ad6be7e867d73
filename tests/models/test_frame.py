"""The columnar twin of the canonical model: rules read from the model, unknown ones refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import polars as pl
import pytest
from pydantic import Field, field_validator

from models.dossier import DossierRecord
from models.frame import UnknownRuleError, check, compile_rules, records

ROW = {
    "source_system": "tax",
    "source_id": "1",
    "dossier_code": "000.00.06.H56-231027-0361",
    "national_dossier_code": None,
    "procedure_code": "2.000477.000.00.00.H56",
    "procedure_name": "  Đăng ky\u0301 thuế ",
    "sector": "Thuế",
    "agency_code": "000.00.06.H56",
    "received_by": None,
    "locality_code": "001",
    "locality_version": None,
    "admin_level": None,
    "channel": "online",
    "service_level": None,
    "status": 2,
    "status_raw": "1",
    "submitted_at": None,
    "received_at": datetime(2024, 1, 2, 8),
    "due_at": datetime(2024, 1, 5),
    "finished_at": None,
    "returned_at": None,
    "applicant_type": None,
    "applicant_key": None,
    "has_fee": False,
    "paid_online": None,
    "docs_submitted": 3,
    "docs_digitised": 2,
    "result_digitised": None,
    "source_updated_at": datetime(2024, 1, 2, 9),
}


def test_rules_come_from_the_models_core_schema() -> None:
    rules = compile_rules()
    assert rules["procedure_code"].max_length == 32
    assert rules["procedure_code"].pattern == r"^\d\.\d{6}(\.[0-9A-Z.]+)?$"
    assert rules["docs_submitted"].le == 10_000 and rules["docs_submitted"].nullable
    assert not rules["received_at"].nullable


def test_an_unknown_constraint_stops_the_twin_from_loading() -> None:
    class Stricter(DossierRecord):
        docs_submitted: Annotated[int, Field(multiple_of=2)] | None = None

    with pytest.raises(UnknownRuleError, match="multiple_of"):
        compile_rules(Stricter)


def test_an_unknown_validator_stops_the_twin_from_loading() -> None:
    class Validated(DossierRecord):
        @field_validator("sector")
        @classmethod
        def _upper(cls, value: str | None) -> str | None:
            return value

    with pytest.raises(UnknownRuleError):
        compile_rules(Validated)


def test_a_passed_row_is_exactly_the_models_record() -> None:
    frame = check(pl.DataFrame([ROW]).with_columns(mapped_ok=pl.lit(True)))
    assert frame.get_column("ok").to_list() == [True]
    (record,) = records(frame)
    assert record.__dict__ == DossierRecord.model_validate(ROW).__dict__
    assert record.procedure_name == "Đăng ký thuế"


def test_a_row_the_model_refuses_is_not_passed() -> None:
    bad = [
        {**ROW, "procedure_code": "2.00047"},
        {**ROW, "due_at": datetime(2024, 1, 2, 7)},
        {**ROW, "docs_digitised": 4},
        {**ROW, "received_at": datetime(1999, 12, 31)},
        {**ROW, "sector": "Thu\x1c"},
    ]
    frame = check(pl.DataFrame(bad).with_columns(mapped_ok=pl.lit(True)))
    assert frame.get_column("ok").to_list() == [False] * len(bad)
