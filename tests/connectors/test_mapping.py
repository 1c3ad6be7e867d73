"""The mapping toolkit (connectors/mapping.py) on its own: every reason collected in declaration
order, code tables, times, identifiers, fees and counts, and the checks made when a connector
class is declared."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, SecretStr

from connectors.base import Batch, Connector, ConnectorContext, Cursor, Health, RawRecord
from connectors.codes import (
    LEGACY_SERVICE_LEVEL,
    SHARED_APPLICANT,
    SHARED_CHANNEL,
    SHARED_STATUS,
    tax_code_or_citizen_id,
)
from connectors.errors import Reason, RecordRejected
from connectors.identifiers import HASHED, IdentifierHasher
from connectors.mapping import (
    Code,
    Count,
    Fee,
    FieldMapping,
    Identifier,
    Time,
    TimeText,
    Value,
    decimal_amount,
    text_only,
    whole_number,
)
from models.dossier import ApplicantType, Channel, DossierRecord, ServiceLevel, Status
from models.localtime import LOCAL
from models.period import Period

HASHER = IdentifierHasher(SecretStr("mapping-test-key-" + "m" * 32))
STATUS = {"MOI": Status.ACCEPTED, "XONG": Status.RESOLVED}
CHANNEL = {1: Channel.IN_PERSON, 2: Channel.ONLINE}
CITIZEN_ID = re.compile(r"[0-9]{12}")
TAX_CODE = tax_code_or_citizen_id("mst")
GOOD: dict[str, Any] = {
    "so": "000.00.09.H56-260302-0017",
    "thuTuc": "1.009794",
    "coQuan": "000.00.09.H56",
    "kenh": 2,
    "trangThai": "MOI",
    "ngayNhan": "2026-03-02T08:15:00",
    "capNhat": "2026-03-02T09:00:00",
    "cccd": "056203001234",
    "lePhi": "75000",
    "daNop": 1,
    "soGiayTo": "3",
}


class NoSettings(BaseModel):
    pass


def read_time(connector: Any, value: Any) -> datetime | None:
    """Times written dd/MM/yyyy HH:mm, like an export file (ValueError when not)."""
    return datetime.strptime(value, "%d/%m/%Y %H:%M").replace(tzinfo=LOCAL)


class Mapped(Connector[NoSettings]):
    """A connector that only maps, declared the way a sector connector is."""

    Settings: ClassVar[type[BaseModel]] = NoSettings
    mapping_file = "tests/connectors/test_mapping.py"
    mapping: ClassVar[FieldMapping] = FieldMapping(
        Value("so", "dossier_code", required="no receipt code"),
        Value("thuTuc", "procedure_code"),
        Value("coQuan", "agency_code"),
        Time("ngayNhan", "received_at", required="no time of receipt"),
        Time("capNhat", "source_updated_at", required=True),
        Code("trangThai", "status", STATUS, raw_field="status_raw"),
        Code("kenh", "channel", CHANNEL, key=whole_number, known="1 or 2"),
        Identifier("cccd", CITIZEN_ID, "a 12-digit citizen ID"),
        Fee("lePhi", decimal_amount, paid=Value("daNop", "paid_online", convert=bool)),
        Count("soGiayTo", "docs_submitted"),
        unknown="{column} {value!r} is not a test code (known: {known})",
    )

    def check(self) -> Health:
        return Health(True, "mapping only")

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        return iter(())

    def count(self, period: Period | None) -> int:
        return 0

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        return self.build(*self.mapping.map(self, raw))


def connector(kind: type[Connector[Any]] = Mapped) -> Connector[Any]:
    return kind(ConnectorContext(source="test", settings={}, hasher=HASHER))


def reasons(payload: dict[str, Any], kind: type[Connector[Any]] = Mapped) -> list[Reason]:
    with pytest.raises(RecordRejected) as rejected:
        connector(kind).to_canonical(RawRecord("1", payload))
    return rejected.value.reasons


def mapped(mapping: FieldMapping, payload: dict[str, Any]) -> tuple[dict[str, Any], list[Reason]]:
    return mapping.map(connector(), RawRecord("1", payload))


# -- the whole record ---------------------------------------------------------------------
def test_a_good_record_maps_every_declared_field() -> None:
    record = connector().to_canonical(RawRecord("17", GOOD))
    assert (record.source_system, record.source_id) == ("test", "17")
    assert record.status is Status.ACCEPTED and record.status_raw == "MOI"
    assert record.channel is Channel.ONLINE
    assert record.received_at == datetime(2026, 3, 2, 1, 15, tzinfo=UTC)
    assert record.applicant_key == HASHER.hash("056203001234")
    assert (record.has_fee, record.paid_online, record.docs_submitted) == (True, True, 3)


def test_every_problem_is_collected_in_declaration_order_then_the_models() -> None:
    bad = {
        **GOOD,
        "so": "  ",
        "thuTuc": "1.0O9794",  # the model's rule
        "ngayNhan": None,
        "trangThai": "CHO",
        "kenh": "9",
        "cccd": "0562",
        "lePhi": "nhiều",
        "soGiayTo": "²",
    }
    got = [(r.field, r.code, r.message) for r in reasons(bad)]
    assert got == [
        ("dossier_code", "missing", "so is blank: no receipt code"),
        ("received_at", "missing", "ngayNhan is empty: no time of receipt"),
        ("status", "unknown_code", "trangThai 'CHO' is not a test code (known: MOI, XONG)"),
        ("channel", "unknown_code", "kenh '9' is not a test code (known: 1 or 2)"),
        ("applicant_key", "invalid_format", "cccd (4 characters) is not a 12-digit citizen ID"),
        ("has_fee", "invalid_number", "lePhi 'nhiều' is not an amount"),
        ("docs_submitted", "invalid_number", "soGiayTo '²' is not a number of documents"),
        (
            "procedure_code",
            "invalid_format",
            "'1.0O9794' is not a national procedure code like 2.000477",
        ),
    ]


def test_a_field_the_mapping_could_not_read_is_left_out_not_reported_twice() -> None:
    got = reasons({**GOOD, "trangThai": None})
    assert [(r.field, r.code) for r in got] == [("status", "unknown_code")]
    assert "trangThai None is not a test code" in got[0].message


# -- code tables --------------------------------------------------------------------------
def test_an_optional_code_may_be_absent_and_absent_values_are_declared() -> None:
    optional = Code("muc", "service_level", {4: "full_online"}, optional=True)
    plain = FieldMapping(optional)
    assert mapped(plain, {"muc": None}) == ({"source_system": "test", "source_id": "1"}, [])
    _, problems = mapped(plain, {"muc": ""})
    assert [r.message for r in problems] == ["muc '' is not a known code (known: 4)"]
    portal = FieldMapping(optional, absent=(None, ""))
    assert mapped(portal, {"muc": ""})[1] == []


def test_a_code_is_looked_up_by_its_key_and_keeps_its_native_text() -> None:
    mapping = FieldMapping(
        Code("tt", "status", {4: Status.IN_PROGRESS}, key=whole_number, raw_field="status_raw")
    )
    fields, problems = mapped(mapping, {"tt": " 4 "})
    assert (
        problems == [] and fields["status"] is Status.IN_PROGRESS and fields["status_raw"] == " 4 "
    )
    for value in ("٤", "４", True, 4.0, "4.0"):
        assert mapped(mapping, {"tt": value})[1], value


def test_a_false_translation_is_a_translation_not_an_unknown_code() -> None:
    mapping = FieldMapping(Code("kq", "result_digitised", {"co": True, "khong": False}))
    assert mapped(mapping, {"kq": "khong"}) == (
        {"source_system": "test", "source_id": "1", "result_digitised": False},
        [],
    )


def test_a_code_spec_can_word_its_own_reason() -> None:
    mapping = FieldMapping(
        Code(
            "loai",
            "applicant_type",
            {1: "citizen"},
            key=whole_number,
            message="{column} {value!r} is not 1-4",
        )
    )
    assert mapped(mapping, {"loai": "7"})[1] == [
        Reason("applicant_type", "unknown_code", "loai '7' is not 1-4")
    ]


def test_text_only_codes_refuse_json_numbers() -> None:
    mapping = FieldMapping(Code("k", "channel", {"1": Channel.IN_PERSON}, key=text_only))
    assert mapped(mapping, {"k": "1"})[0]["channel"] is Channel.IN_PERSON
    assert mapped(mapping, {"k": 1})[1][0].code == "unknown_code"


# -- times --------------------------------------------------------------------------------
TEXT_TIMES = FieldMapping(
    Time("nhan", "received_at", required=True),
    Time("hen", "due_at"),
    times=TimeText(read_time, "invalid_date", "a dd/MM/yyyy HH:mm time"),
)


def test_text_times_are_read_by_the_declared_reader() -> None:
    fields, problems = mapped(TEXT_TIMES, {"nhan": "02/03/2026 08:15", "hen": " "})
    assert problems == []
    assert fields["received_at"] == datetime(2026, 3, 2, 8, 15, tzinfo=LOCAL)
    assert "due_at" not in fields  # blank text is no time


def test_an_unreadable_time_names_the_expected_form_and_shows_at_most_40_characters() -> None:
    _, problems = mapped(TEXT_TIMES, {"nhan": "31/02/2026 08:15", "hen": "x" * 100})
    assert problems == [
        Reason(
            "received_at", "invalid_date", "nhan '31/02/2026 08:15' is not a dd/MM/yyyy HH:mm time"
        ),
        Reason("due_at", "invalid_date", f"hen {'x' * 40!r} is not a dd/MM/yyyy HH:mm time"),
    ]


def test_a_required_text_time_that_is_blank_is_missing() -> None:
    assert mapped(TEXT_TIMES, {"nhan": "  "})[1] == [
        Reason("received_at", "missing", "nhan is empty")
    ]


def test_without_a_reader_times_pass_on_for_the_model_and_only_none_is_empty() -> None:
    plain = FieldMapping(
        Time("nhan", "received_at", required="no time"), Time("xong", "finished_at")
    )
    moment = datetime(2026, 3, 2, 8, 15)
    assert mapped(plain, {"nhan": moment, "xong": None})[0] == {
        "source_system": "test",
        "source_id": "1",
        "received_at": moment,
        "finished_at": None,
    }
    assert mapped(plain, {"nhan": ""})[0]["received_at"] == ""  # the model says why
    assert mapped(plain, {"nhan": None})[1] == [
        Reason("received_at", "missing", "nhan is empty: no time")
    ]


def test_a_naive_time_passed_on_is_local_time() -> None:
    record = connector().to_canonical(
        RawRecord("1", {**GOOD, "ngayNhan": datetime(2026, 3, 2, 6, 0)})
    )
    assert record.received_at == datetime(2026, 3, 1, 23, 0, tzinfo=UTC)


# -- identifiers --------------------------------------------------------------------------
def test_an_identifier_is_hashed_and_a_hashed_one_kept() -> None:
    key = HASHER.hash("056203001234")
    assert mapped(Mapped.mapping, {"cccd": " 056203001234 "})[0]["applicant_key"] == key
    assert mapped(Mapped.mapping, {"cccd": HASHED + str(key)})[0]["applicant_key"] == key
    assert "applicant_key" not in mapped(Mapped.mapping, {"cccd": "   "})[0]


def test_an_identifier_of_another_shape_is_described_never_quoted() -> None:
    for clear in ("05620300123", "٠٥٦٢٠٣٠٠١٢٣٤", "0562030012345"):
        [problem] = [
            r for r in mapped(Mapped.mapping, {"cccd": clear})[1] if r.field == "applicant_key"
        ]
        assert problem.code == "invalid_format" and clear not in problem.message
        assert f"({len(clear)} characters)" in problem.message


def test_a_connector_declaring_a_mapping_gets_its_personal_fields() -> None:
    assert Mapped.personal_fields == {"cccd": "applicant_key"}
    kept = connector().redact({"cccd": "056203001234"}, [])
    assert kept == {"cccd": HASHED + str(HASHER.hash("056203001234"))}


# -- fees, counts, values -----------------------------------------------------------------
def test_online_payment_is_read_only_when_there_is_a_fee() -> None:
    fee = FieldMapping(Fee("phi", decimal_amount, paid=Code("tt", "paid_online", {"co": True})))
    assert mapped(fee, {"phi": 0, "tt": "??"})[0] == {
        "source_system": "test",
        "source_id": "1",
        "has_fee": False,
    }
    assert mapped(fee, {"phi": "5", "tt": None})[0]["has_fee"] is True
    assert mapped(fee, {"phi": 5, "tt": "??"})[1][0].field == "paid_online"
    assert mapped(fee, {"phi": None, "tt": "??"}) == (
        {"source_system": "test", "source_id": "1"},
        [],
    )


@pytest.mark.parametrize("amount", ["NaN", "5,0", [5], "1e"])
def test_what_is_not_an_amount_is_reported(amount: Any) -> None:
    fee = FieldMapping(Fee("phi", decimal_amount))
    assert mapped(fee, {"phi": amount})[1] == [
        Reason("has_fee", "invalid_number", f"phi {amount!r} is not an amount")
    ]


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("3", 3),
        (" 12 ", 12),
        (7, 7),
        (True, None),
        ("²", None),
        ("٣", None),
        ("0_2", None),
        ("", None),
        (2.0, None),
    ],
)
def test_whole_numbers_are_ascii_digits_or_ints(value: Any, number: int | None) -> None:
    assert whole_number(value) == number


def test_a_count_has_at_most_nine_digits() -> None:
    count = FieldMapping(Count("so", "docs_submitted"))
    assert mapped(count, {"so": "000000009"})[0]["docs_submitted"] == 9
    assert mapped(count, {"so": "0000000009"})[1][0].code == "invalid_number"


def test_none_is_missing_leaves_out_what_an_export_left_empty() -> None:
    spec = Value("ma", "procedure_code")
    assert mapped(FieldMapping(spec), {"ma": None})[0]["procedure_code"] is None
    assert "procedure_code" not in mapped(FieldMapping(spec, none_is_missing=True), {"ma": None})[0]
    assert (
        mapped(FieldMapping(Value("d", "locality_code", convert=str)), {"d": 56})[0][
            "locality_code"
        ]
        == "56"
    )


# -- declaring a connector ------------------------------------------------------------------
def test_a_mapping_reading_an_undeclared_column_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(
        TypeError, match=r"column 'NGAY_NHAM', which is not in the connector's columns"
    ):

        class Misspelt(Mapped):  # a table transport: every record has exactly its columns
            columns: ClassVar[tuple[str, ...]] = ("NGAY_NHAN",)
            mapping = FieldMapping(Time("NGAY_NHAM", "received_at"))


def test_a_connector_is_generic_over_its_settings() -> None:
    assert isinstance(connector().settings, NoSettings)


# -- declaring several specs at once, word tables, shared tables -----------------------------
def test_value_each_and_time_each_declare_several_specs_in_the_order_written() -> None:
    copies = Value.each(thuTuc="procedure_code", coQuan="agency_code")
    times = Time.each(ngayNhan="received_at", capNhat="source_updated_at")
    assert copies == (Value("thuTuc", "procedure_code"), Value("coQuan", "agency_code"))
    assert times == (Time("ngayNhan", "received_at"), Time("capNhat", "source_updated_at"))
    fields, problems = mapped(FieldMapping(*copies, *times), GOOD)
    assert problems == []
    assert [fields["procedure_code"], fields["agency_code"]] == ["1.009794", "000.00.09.H56"]
    assert fields["received_at"] == "2026-03-02T08:15:00"


def test_a_code_table_of_words_is_compared_whatever_the_form_case_or_spacing() -> None:
    spec = Code("tt", "status", {"Đã tiếp nhận": Status.ACCEPTED}, words=True)
    decomposed = unicodedata.normalize("NFD", "ĐÃ  TIẾP NHẬN ")
    assert mapped(FieldMapping(spec), {"tt": decomposed})[0]["status"] is Status.ACCEPTED
    _, problems = mapped(FieldMapping(spec), {"tt": "Đã rút"})
    assert [r.message for r in problems] == [
        "tt 'Đã rút' is not a known code (known: đã tiếp nhận)"
    ]


def test_a_code_of_words_takes_no_other_key() -> None:
    with pytest.raises(TypeError, match="'tt': give either key or words, not both"):
        Code("tt", "status", {"Mới": Status.ACCEPTED}, key=str.strip, words=True)


def test_the_tax_code_identifier_takes_ascii_digits_only() -> None:
    arabic_indic = "٠١٠١٢٣٤٥٦٧"  # ten digits, not ASCII
    fields, found = mapped(FieldMapping(TAX_CODE), {"mst": arabic_indic})
    assert [r.code for r in found] == ["invalid_format"] and "applicant_key" not in fields
    fields, found = mapped(FieldMapping(TAX_CODE), {"mst": "0101234567-001"})
    assert found == [] and fields["applicant_key"] == HASHER.hash("0101234567-001")


@pytest.mark.parametrize("digits", ["٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "०१२३४५६७८९"])
def test_no_sector_identifier_takes_another_scripts_digits(digits: str) -> None:
    """`\\d` matches Arabic-Indic, fullwidth or Devanagari digits too, and the same number in
    them would hash to another key (one applicant, two keys). Every identifier of every sector
    connector refuses them, whatever its pattern, on both sync paths (the columnar path asks
    the same `identifier_text`)."""
    from connectors.finance import FinanceConnector
    from connectors.land import LandConnector
    from connectors.one_stop import OneStopConnector
    from connectors.social_insurance import SocialInsuranceConnector
    from connectors.tax import TaxConnector

    samples = ("012345678901", "0101234567-001", "0101234567", "012345678")
    checked = 0
    kinds = (TaxConnector, LandConnector, FinanceConnector, OneStopConnector)
    for kind in (*kinds, SocialInsuranceConnector):
        assert kind.mapping is not None
        for spec in kind.mapping.specs:
            if not isinstance(spec, Identifier):
                continue
            ascii_id = next(s for s in samples if spec.pattern.fullmatch(s))
            other = ascii_id.translate(str.maketrans("0123456789", digits))
            for value, problems in ((ascii_id, 0), (other, 1)):
                _, found = mapped(FieldMapping(spec), {spec.column: value})
                assert len(found) == problems, (kind.__name__, value)
            checked += 1
    assert checked >= 5


def test_the_shared_tables_hold_the_national_codes_and_the_legacy_levels() -> None:
    assert SHARED_STATUS[10] is Status.RESULT_RETURNED and len(SHARED_STATUS) == 10
    assert list(SHARED_CHANNEL.values()) == [Channel.IN_PERSON, Channel.ONLINE, Channel.POSTAL]
    assert SHARED_APPLICANT[2] is ApplicantType.ENTERPRISE and len(SHARED_APPLICANT) == 4
    assert LEGACY_SERVICE_LEVEL == {
        4: ServiceLevel.FULL_ONLINE,
        3: ServiceLevel.PARTIAL_ONLINE,
        2: ServiceLevel.NOT_ONLINE,
    }


# -- the default to_canonical ---------------------------------------------------------------
class Declared(Connector[NoSettings]):
    """A connector that only declares its mapping and one special case."""

    Settings: ClassVar[type[BaseModel]] = NoSettings
    mapping = Mapped.mapping

    def check(self) -> Health:
        return Health(True, "mapping only")

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        return iter(())

    def count(self, period: Period | None) -> int:
        return 0

    def adjust(self, fields: dict[str, Any], raw: RawRecord) -> None:
        fields["national_dossier_code"] = raw.payload["so"]


def test_a_connector_declaring_a_mapping_needs_no_to_canonical_and_adjusts_its_special_cases() -> (
    None
):
    record = connector(Declared).to_canonical(RawRecord("17", GOOD))
    assert record.status is Status.ACCEPTED and record.applicant_key == HASHER.hash("056203001234")
    assert record.national_dossier_code == GOOD["so"]
    assert [r.field for r in reasons({**GOOD, "kenh": "9"}, Declared)] == ["channel"]


def test_a_connector_with_neither_a_mapping_nor_to_canonical_is_refused_when_made() -> None:
    class Undeclared(Declared):
        mapping = None

    with pytest.raises(TypeError, match="declares no mapping and no to_canonical"):
        connector(Undeclared)


def test_the_mapping_file_errors_name_is_the_connectors_own_module() -> None:
    """Error messages name the file holding a connector's mapping; it comes from the class,
    so a vendor's connector can neither forget it nor name the wrong file."""
    from connectors.finance import FinanceConnector
    from connectors.land import LandConnector
    from connectors.one_stop import OneStopConnector
    from connectors.social_insurance import SocialInsuranceConnector
    from connectors.tax import TaxConnector

    for kind in (
        TaxConnector,
        LandConnector,
        FinanceConnector,
        OneStopConnector,
        SocialInsuranceConnector,
    ):
        assert kind.mapping_file == kind.__module__.replace(".", "/") + ".py"
    assert TaxConnector.mapping_file == "connectors/tax.py"

    class Here(TaxConnector):
        pass

    class Named(TaxConnector):
        mapping_file = "elsewhere/mapping.py"

    assert Here.mapping_file == "tests/connectors/test_mapping.py"
    assert Named.mapping_file == "elsewhere/mapping.py"
