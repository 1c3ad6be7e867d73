"""Native Tax and Land rows for the differential test of the columnar path, valid and malformed.

Each draw is a page of native rows as the PostgreSQL row reader gives them (psycopg values),
most of them valid with a few fields pushed to an edge: padded or decomposed text, control
characters and legacy encodings, codes one character off, lengths at 32 and 33, times around
2000-01-01, the 2025-07-01 reform, received_at and tomorrow, unknown codes, NaN fees,
malformed identifiers, repeated ids. `arrow_page` gives the same page as ADBC delivers it.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

NOW = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=7)  # local wall-clock now
NAME = "Đăng ký thuế lần đầu"
TEXTS = st.sampled_from(
    [
        NAME,
        "Thuế",
        unicodedata.normalize("NFD", NAME),  # decomposed diacritics: NFC in the registry
        f"  {NAME} ",
        f"\u00a0{NAME}\t",
        "",
        "   ",
        "Thu\x1c",  # str.strip and Rust's trim disagree on \x1c-\x1f
        "\x1cThuế",
        "Thuế\x00",
        "Ä\x90Äƒng kÃ½",  # UTF-8 read as Windows-1252
        "Ñaêng kyù",  # VNI read as Latin-1
        "\ufffd",
        "x" * 255,
        "x" * 256,
    ]
)
# Valid names the model still cleans: decomposed diacritics (NFC), padding.
VALID_NAMES = st.sampled_from([NAME, unicodedata.normalize("NFD", NAME), f" {NAME}  "])
PROCEDURES = st.sampled_from(
    [
        "1.000123",
        "2.000288",
        "1.000123.000.00.00.H56",
        "1.000123." + "0" * 23,  # 32 characters: the max_length edge
        *["1.000123." + "0" * 24] * 6,  # 33 characters, drawn more often: one over the edge
        "1.00012",
        "1.0001234",
        "1.000123.h56",
        "١.000123",
        " 1.000123 ",
        "",
    ]
)
AGENCIES = st.sampled_from(
    [
        "000.00.06.H56",
        "000.21.06.H56",
        "00.00.06.H56",
        "000.00.06.h56",
        "000.00.06.H5",
        " 000.22.06.H56",
    ]
)
RECEIPTS = st.sampled_from(
    [
        "000.00.06.H56-231027-0361",
        "03706/2026/07906",
        "ab",
        "abc",
        "a" * 64,
        "a" * 65,
        " 000.00.06.H56-231027-0362 ",
        "000 00",
        "",
        "  ",
        "-abc",
    ]
)
LOCALITIES = st.sampled_from(["56", "568", "56800", "5680", "5a", " 568", "", "٥٦"])
BASES = [
    datetime(2000, 1, 1, 7, 0),  # = 2000-01-01 00:00 UTC, the earliest allowed
    datetime(2025, 6, 30, 23, 30),
    datetime(2025, 7, 1, 6, 59, 59),  # the two-level unit table starts at local midnight
    datetime(2025, 7, 1, 0, 0),
    datetime(2024, 3, 5, 9, 15),
    NOW - timedelta(days=1, hours=2),
]
BROKEN = [
    datetime(2000, 1, 1, 7, 0) - timedelta(microseconds=1),  # 1999-12-31 23:59:59.999999 UTC
    datetime(1, 1, 1),
    NOW + timedelta(days=1, hours=1),  # past tomorrow
]


@st.composite
def moments(draw: Any, broken: bool = False) -> datetime:
    """A valid local time near an edge, or (`broken`) one just over an edge."""
    if broken:
        return draw(st.sampled_from(BROKEN))
    base = draw(st.sampled_from(BASES))
    return base + draw(st.sampled_from([timedelta(0), timedelta(microseconds=1)]))


def later(draw: Any, e: Edges, received: datetime | None, due: bool = False) -> datetime | None:
    """None, or a time after `received`; for an edged field, one just before it."""
    edged = e.next()
    if received is None or (not edged and draw(st.booleans())):
        return None
    steps = (
        [timedelta(microseconds=-1), timedelta(days=-1)]
        if edged
        else [timedelta(0), timedelta(hours=5)]
    )
    if due and not edged:
        steps.append(timedelta(days=9000))  # far future: allowed for a due date only
    return received + draw(st.sampled_from(steps))


class Edges:
    """Which field of a row (if any) is pushed over an edge; the others stay valid."""

    def __init__(self, draw: Any, fields: int = 26) -> None:
        self.chosen = {draw(st.sampled_from(range(-fields, fields)))}
        self.seen = 0

    def next(self) -> bool:
        self.seen += 1
        return self.seen - 1 in self.chosen


def pick(draw: Any, e: Edges, valid: st.SearchStrategy[Any], edges: st.SearchStrategy[Any]) -> Any:
    """A valid value, or an edge for the field the row pushes."""
    return draw(edges) if e.next() else draw(valid)


TAX_IDS = st.sampled_from(
    [
        "0101234567",
        "0101234567-001",
        "0101234567001",
        "012345678901",
        " 0101234567 ",
        "010123456",  # 9 digits: not a Tax code
        "01012345678",
        "0101234567-01",
        "01O1234567",
        "٠١٠١٢٣٤٥٦٧",  # Unicode digits: \d matches them
        "",
        "   ",
        "hmac-sha256:" + "ab" * 32,
    ]
)
CITIZEN_IDS = st.sampled_from(
    ["012345678901", "123456789", " 123456789", "12345678", "1234567890", "0123-4567-8901", ""]
)


def receipt_and_change(draw: Any, e: Edges) -> tuple[datetime | None, datetime]:
    """The receipt time (absent or broken when edged) and a last-change time after it (past
    the horizon, or before 2000, when edged)."""
    received = pick(draw, e, moments(), st.none() | moments(broken=True))
    updated = (received or NOW - timedelta(days=1)) + draw(
        st.sampled_from([timedelta(0), timedelta(hours=1)])
    )
    if e.next():
        updated = draw(st.sampled_from([NOW + timedelta(hours=3), BROKEN[0]]))
    return received, updated


@st.composite
def tax_rows(draw: Any, ids: st.SearchStrategy[int]) -> dict[str, Any]:
    e = Edges(draw)
    received, updated = receipt_and_change(draw, e)
    finished = later(draw, e, received)
    return {
        "ID": draw(ids),
        "MA_HS": pick(draw, e, st.just("000.00.06.H56-231027-0361"), RECEIPTS | st.none()),
        "MA_HS_QG": pick(draw, e, st.none(), RECEIPTS),
        "MA_TTHC": pick(
            draw, e, st.sampled_from(["1.000123", "1.000123.000.00.00.H56"]), PROCEDURES
        ),
        "TEN_TTHC": pick(draw, e, VALID_NAMES, TEXTS),
        "LINH_VUC": pick(draw, e, st.sampled_from(["Thuế", None]), TEXTS),
        "MA_CQ": pick(draw, e, st.just("000.00.06.H56"), AGENCIES),
        "MA_DVHC": pick(draw, e, st.sampled_from(["56", "568", "56800", None]), LOCALITIES),
        "NGAY_NOP": pick(draw, e, st.none() | moments(), moments(broken=True)),
        "NGAY_NHAN": received,
        "NGAY_HEN_TRA": later(draw, e, received, due=True),
        "NGAY_TRA": finished,
        "KENH_NOP": pick(
            draw,
            e,
            st.sampled_from(["TRUC_TIEP", "TRUC_TUYEN", "BUU_CHINH"]),
            st.sampled_from(["truc_tuyen", "TRUC_TUYEN ", "X", ""]),
        ),
        "MUC_DO": pick(
            draw,
            e,
            st.sampled_from(["TOAN_TRINH", "MOT_PHAN", "KHONG", None]),
            st.sampled_from(["Z", "KHONG "]),
        ),
        "TRANG_THAI": pick(draw, e, st.integers(0, 9), st.sampled_from([10, -1])),
        "LOAI_DT": pick(draw, e, st.sampled_from([1, 2, 3, 4, None]), st.sampled_from([0, 5])),
        "MST": pick(draw, e, st.sampled_from(["0101234567", "0101234567-001", None]), TAX_IDS),
        "LE_PHI": pick(
            draw,
            e,
            st.sampled_from([Decimal(0), Decimal(20000)]),
            st.sampled_from([Decimal("NaN"), Decimal(-5), Decimal("0.4")]),
        ),
        "NOP_PHI_TT": pick(draw, e, st.sampled_from([0, 1]), st.sampled_from([2])),
        "SO_TP": pick(
            draw, e, st.sampled_from([None, 0, 3, 10]), st.sampled_from([-1, 10_000, 10_001])
        ),
        "SO_TP_SO_HOA": pick(draw, e, st.sampled_from([None, 0, 3]), st.sampled_from([4, 11, -1])),
        "KQ_SO_HOA": pick(draw, e, st.sampled_from([None, 0, 1]), st.sampled_from([2])),
        "NGAY_CAP_NHAT": updated,
    }


def zoned(local: datetime) -> datetime:
    """A local time as psycopg gives a `timestamptz` (UTC here); a local time in the first
    7 hours of year 1 is before 0001-01-01 UTC, which no reader gives: it moves up to that."""
    return max(local, datetime(1, 1, 1, 7)).replace(tzinfo=UTC) - timedelta(hours=7)


@st.composite
def land_rows(draw: Any, ids: st.SearchStrategy[int]) -> dict[str, Any]:
    e = Edges(draw)
    received, updated = receipt_and_change(draw, e)
    finished = later(draw, e, received)
    return {
        "id": draw(ids),
        "ma_ho_so": pick(draw, e, st.just("000.00.06.H56-231027-0361"), RECEIPTS | st.none()),
        "ma_ho_so_mot_cua": pick(draw, e, st.none(), RECEIPTS),
        "ma_thu_tuc": pick(
            draw, e, st.sampled_from(["1.000123", "1.000123.000.00.00.H56"]), PROCEDURES
        ),
        "ten_thu_tuc": pick(draw, e, VALID_NAMES, TEXTS),
        "linh_vuc": pick(draw, e, st.sampled_from(["Đất đai", None]), TEXTS),
        "ma_don_vi_xu_ly": pick(draw, e, st.just("000.00.06.H56"), AGENCIES),
        "ma_don_vi_tiep_nhan": pick(draw, e, st.sampled_from(["000.00.06.H56", None]), AGENCIES),
        "ma_dvhc": pick(draw, e, st.sampled_from(["56", "568", "56800", None]), LOCALITIES),
        "ngay_nop": pick(draw, e, st.none() | moments(), moments(broken=True)),
        "ngay_tiep_nhan": received,
        "ngay_hen_tra": later(draw, e, received, due=True),
        "ngay_hoan_thanh": finished,
        "ngay_tra_ket_qua": later(draw, e, finished),
        "hinh_thuc_nop": pick(draw, e, st.sampled_from([0, 1, 2]), st.sampled_from([3, -1])),
        "muc_do_dvc": pick(draw, e, st.sampled_from([2, 3, 4, None]), st.sampled_from([1, 5])),
        "trang_thai": pick(
            draw,
            e,
            st.sampled_from(["TIEP_NHAN", "DANG_XU_LY", "DA_TRA", "TAM_DUNG", "CHO_BO_SUNG"]),
            st.sampled_from(["da_tra", "DA_TRA ", "XYZ", ""]),
        ),
        "loai_nguoi_nop": pick(
            draw,
            e,
            st.sampled_from(["CA_NHAN", "DOANH_NGHIEP", None]),
            st.sampled_from(["ca_nhan", "X"]),
        ),
        "so_cccd": pick(draw, e, st.sampled_from(["012345678901", "123456789", None]), CITIZEN_IDS),
        "le_phi": pick(draw, e, st.sampled_from([0, 50000]), st.sampled_from([-1])),
        "thanh_toan_truc_tuyen": draw(st.booleans()),
        "so_giay_to": pick(draw, e, st.sampled_from([None, 0, 3]), st.sampled_from([-1, 10_001])),
        "so_giay_to_so_hoa": pick(draw, e, st.sampled_from([None, 0, 3]), st.sampled_from([4])),
        "ket_qua_so_hoa": draw(st.sampled_from([None, True, False])),
        "ngay_cap_nhat": zoned(updated),
    }


def pages(rows: Any) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A page of 1-12 rows; ids from a small range so some repeat."""
    return st.lists(rows(st.integers(1, 15)), min_size=1, max_size=12)


_NUMERIC = {b"POSTGRESQL:type": b"numeric"}
TAX_SCHEMA = pa.schema(
    [
        ("ID", pa.int32()),
        *(
            (name, pa.string())
            for name in ("MA_HS", "MA_HS_QG", "MA_TTHC", "TEN_TTHC", "LINH_VUC", "MA_CQ", "MA_DVHC")
        ),
        *(
            (name, pa.timestamp("us"))
            for name in ("NGAY_NOP", "NGAY_NHAN", "NGAY_HEN_TRA", "NGAY_TRA")
        ),
        ("KENH_NOP", pa.string()),
        ("MUC_DO", pa.string()),
        ("TRANG_THAI", pa.int16()),
        ("LOAI_DT", pa.int16()),
        ("MST", pa.string()),
        pa.field("LE_PHI", pa.string(), metadata=_NUMERIC),  # ADBC: NUMERIC as text
        *((name, pa.int16()) for name in ("NOP_PHI_TT", "SO_TP", "SO_TP_SO_HOA", "KQ_SO_HOA")),
        ("NGAY_CAP_NHAT", pa.timestamp("us")),
    ]
)
LAND_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        *(
            (name, pa.string())
            for name in (
                "ma_ho_so",
                "ma_ho_so_mot_cua",
                "ma_thu_tuc",
                "ten_thu_tuc",
                "linh_vuc",
                "ma_don_vi_xu_ly",
                "ma_don_vi_tiep_nhan",
                "ma_dvhc",
            )
        ),
        *(
            (name, pa.timestamp("us"))
            for name in (
                "ngay_nop",
                "ngay_tiep_nhan",
                "ngay_hen_tra",
                "ngay_hoan_thanh",
                "ngay_tra_ket_qua",
            )
        ),
        ("hinh_thuc_nop", pa.int16()),
        ("muc_do_dvc", pa.int16()),
        ("trang_thai", pa.string()),
        ("loai_nguoi_nop", pa.string()),
        ("so_cccd", pa.string()),
        ("le_phi", pa.int64()),
        ("thanh_toan_truc_tuyen", pa.bool_()),
        ("so_giay_to", pa.int16()),
        ("so_giay_to_so_hoa", pa.int16()),
        ("ket_qua_so_hoa", pa.bool_()),
        ("ngay_cap_nhat", pa.timestamp("us", tz="UTC")),
    ]
)


def arrow_page(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """The page as ADBC delivers it (NUMERIC as PostgreSQL's text: NaN as 'nan')."""

    def text(value: Any) -> Any:
        if isinstance(value, Decimal):
            return "nan" if value.is_nan() else str(value)
        return value

    columns = {
        field.name: [text(row[field.name]) if field.metadata else row[field.name] for row in rows]
        for field in schema
    }
    return pa.Table.from_pydict(columns, schema=schema)
