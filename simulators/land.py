"""The Land registration office's reference database: native schema, seeded generator, faults.

The land registration office (Văn phòng Đăng ký đất đai) runs its own software on PostgreSQL
(SQLite works too, for quick tests). Its shape is its own, unlike Tax's:

* `ho_so_dang_ky`, one row per dossier: lower-case Vietnamese snake_case columns, text status
  codes ('TIEP_NHAN', 'DANG_XU_LY', 'CHO_BO_SUNG', 'TAM_DUNG', ...), a zero-based submission
  channel (0 at the counter, 1 online, 2 by post), the legacy service levels 2/3/4, 12-digit
  citizen IDs (or old 9-digit ID cards) in clear, and a change time with its time zone
  (`timestamptz` on PostgreSQL) while every other time is naive local time;
* `lich_su_xu_ly`, the append-only log of status changes. Land dossiers run long: they wait for
  supplements (CHO_BO_SUNG), are suspended (TAM_DUNG) for disputes or surveys, wait for the
  applicant's financial obligations, and go back to processing many times. While a dossier
  waits for a supplement or is suspended, its clock stops: the due date (ngay_hen_tra) moves
  on by the length of the interval.

Dossiers received at a one-stop centre and forwarded to Land (`simulators.scenario.forwarded`)
carry the centre's receipt code in `ma_ho_so_mot_cua` and the centre in `ma_don_vi_tiep_nhan`.

* `generate` rebuilds both tables from a seed (COPY on PostgreSQL) and can plant malformed rows,
  each with exactly one defect, returning the `Truth` about what it planted;
* `advance` moves dossiers through their next status steps the way the live system does;
* `repair` fixes malformed rows at the source, as an operator would.

Every change gets a change time past every other row, so an incremental sync must pick it up.
Nothing here knows the canonical record; translating is the job of `connectors/land.py`.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    and_,
    bindparam,
    create_engine,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateTable
from sqlalchemy.types import TypeDecorator

from simulators import scenario

TABLE = "ho_so_dang_ky"
HISTORY = "lich_su_xu_ly"

START = scenario.START
END = scenario.END  # exclusive: nothing is received or changed from here on
LAST = END - timedelta(seconds=1)
TWO_LEVEL_FROM = scenario.TWO_LEVEL_FROM
# Vietnam keeps UTC+7 all year: the zone Land stamps its change times with.
LOCAL_TZ = timezone(timedelta(hours=7))

# -- the Land office's own vocabulary -------------------------------------------------------
# trang_thai: Land's text status codes. Land opens a row only once a dossier is accepted.
TIEP_NHAN = "TIEP_NHAN"  # đã tiếp nhận
DANG_XU_LY = "DANG_XU_LY"  # đang xử lý
CHO_BO_SUNG = "CHO_BO_SUNG"  # chờ bổ sung hồ sơ (the clock stops)
CHO_NGHIA_VU_TC = "CHO_NGHIA_VU_TC"  # chờ thực hiện nghĩa vụ tài chính
TAM_DUNG = "TAM_DUNG"  # tạm dừng xử lý: dispute, survey, court (the clock stops)
DA_GIAI_QUYET = "DA_GIAI_QUYET"  # đã giải quyết, chưa trả
DA_TRA = "DA_TRA"  # đã trả kết quả
TU_CHOI = "TU_CHOI"  # từ chối: the dossier does not qualify
RUT_HO_SO = "RUT_HO_SO"  # người nộp rút hồ sơ
STATUSES = (
    TIEP_NHAN,
    DANG_XU_LY,
    CHO_BO_SUNG,
    CHO_NGHIA_VU_TC,
    TAM_DUNG,
    DA_GIAI_QUYET,
    DA_TRA,
    TU_CHOI,
    RUT_HO_SO,
)
# Statuses a dossier can still move on from, and where it may go next (with weights).
NEXT_STEPS: dict[str, tuple[tuple[str, float], ...]] = {
    TIEP_NHAN: ((DANG_XU_LY, 0.96), (TU_CHOI, 0.04)),
    DANG_XU_LY: (
        (CHO_BO_SUNG, 0.25),
        (TAM_DUNG, 0.10),
        (CHO_NGHIA_VU_TC, 0.20),
        (DA_GIAI_QUYET, 0.45),
    ),
    CHO_BO_SUNG: ((DANG_XU_LY, 0.93), (RUT_HO_SO, 0.07)),
    TAM_DUNG: ((DANG_XU_LY, 1.0),),
    CHO_NGHIA_VU_TC: ((DANG_XU_LY, 1.0),),
    DA_GIAI_QUYET: ((DA_TRA, 1.0),),
}
OPEN = tuple(NEXT_STEPS)
PAUSED = (CHO_BO_SUNG, TAM_DUNG)  # the statutory clock stops while in these
# How long a dossier stays in a status before its next step, in seconds (low, high).
_STAY = {
    TIEP_NHAN: (3600, 2 * 86400),
    DANG_XU_LY: (86400, 8 * 86400),
    CHO_BO_SUNG: (2 * 86400, 40 * 86400),
    TAM_DUNG: (7 * 86400, 75 * 86400),
    CHO_NGHIA_VU_TC: (86400, 15 * 86400),
    DA_GIAI_QUYET: (7200, 7 * 86400),
}
_NOTES = {
    TIEP_NHAN: ("Tiếp nhận hồ sơ",),
    DANG_XU_LY: ("Chuyển xử lý", "Tiếp tục giải quyết", "Kiểm tra hồ sơ, xác minh thực địa"),
    CHO_BO_SUNG: (
        "Bổ sung bản vẽ sơ đồ thửa đất",
        "Bổ sung hợp đồng chuyển nhượng có công chứng",
        "Bổ sung trích lục bản đồ địa chính",
        "Bổ sung giấy tờ về quyền sử dụng đất",
    ),
    CHO_NGHIA_VU_TC: ("Chuyển thông tin sang cơ quan thuế xác định nghĩa vụ tài chính",),
    TAM_DUNG: (
        "Tạm dừng do có đơn tranh chấp",
        "Tạm dừng chờ kết quả đo đạc",
        "Tạm dừng theo yêu cầu của Tòa án",
    ),
    DA_GIAI_QUYET: ("Ký Giấy chứng nhận",),
    DA_TRA: ("Trả kết quả cho người nộp",),
    TU_CHOI: ("Hồ sơ không đủ điều kiện giải quyết",),
    RUT_HO_SO: ("Người nộp có đơn rút hồ sơ",),
}
_MAX_STEPS = 24

# hinh_thuc_nop: zero-based, unlike the KenhThucHien codes 1/2/3.
IN_PERSON, ONLINE, POSTAL = 0, 1, 2
CHANNELS = (IN_PERSON, ONLINE, POSTAL)
# muc_do_dvc: Land still records the legacy online service levels.
LEVEL_FULL, LEVEL_PARTIAL, LEVEL_NONE = 4, 3, 2
APPLICANT_TYPES = ("CA_NHAN", "DOANH_NGHIEP", "CO_QUAN_NHA_NUOC", "TO_CHUC_KHAC")

PROVINCE = scenario.PROVINCE_LOCALITY
PROVINCE_OFFICE = "000.00.13.H56"  # Văn phòng Đăng ký đất đai tỉnh
BRANCHES = ("000.21.13.H56", "000.22.13.H56", "000.23.13.H56")  # its district branches
AGENCIES = (PROVINCE_OFFICE, *BRANCHES)
DISTRICTS = ("568", "569", "570", "572", "573", "574")
COMMUNES_THREE_LEVEL = ("22333", "22366", "22390", "22402", "22411", "22435", "22450")
COMMUNES_TWO_LEVEL = ("22333", "22390", "22411", "22480", "22504", "22528")


class Procedure(NamedTuple):
    code: str
    name: str
    sector: str
    level: int  # legacy service level 2, 3 or 4
    days: int  # statutory processing time
    fee: int  # đồng; 0 = free
    weight: int  # relative volume


PROCEDURES = (
    Procedure("1.004227", "Đăng ký biến động quyền sử dụng đất", "Đất đai", 3, 10, 50000, 30),
    Procedure(
        "2.000889", "Cấp Giấy chứng nhận quyền sử dụng đất lần đầu", "Đất đai", 3, 20, 100000, 14
    ),
    Procedure(
        "1.003003",
        "Đăng ký thế chấp quyền sử dụng đất",
        "Đăng ký biện pháp bảo đảm",
        LEVEL_FULL,
        1,
        80000,
        16,
    ),
    Procedure(
        "1.004203",
        "Xóa đăng ký thế chấp quyền sử dụng đất",
        "Đăng ký biện pháp bảo đảm",
        LEVEL_FULL,
        1,
        20000,
        9,
    ),
    Procedure("1.005194", "Cấp đổi Giấy chứng nhận quyền sử dụng đất", "Đất đai", 3, 7, 50000, 10),
    Procedure(
        "2.001765", "Cung cấp thông tin, dữ liệu đất đai", "Đất đai", LEVEL_FULL, 2, 30000, 8
    ),
    Procedure("1.001990", "Tách thửa hoặc hợp thửa đất", "Đất đai", LEVEL_NONE, 15, 0, 7),
    Procedure("1.002273", "Chuyển mục đích sử dụng đất", "Đất đai", LEVEL_NONE, 15, 0, 6),
)
_BY_CODE = {p.code: p for p in PROCEDURES}
_BY_NAME = {p.name: p for p in PROCEDURES}
# UTF-8 procedure names read as Windows-1252 somewhere upstream: the legacy-encoding defect.
_MOJIBAKE = {p.name.encode().decode("cp1252", errors="replace"): p for p in PROCEDURES}
_CITIZEN_ID = re.compile(r"\d{12}|\d{9}")
_DOSSIER_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.\-/_]{2,63}")


# -- the tables -----------------------------------------------------------------------------
class _ChangeTime(TypeDecorator[datetime]):
    """Land's change stamps: `timestamptz` on PostgreSQL, local wall-clock time on SQLite.

    Python code here always works in naive local time; this converts at the database edge.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value if value.tzinfo else value.replace(tzinfo=LOCAL_TZ)
        return value.astimezone(LOCAL_TZ).replace(tzinfo=None) if value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(LOCAL_TZ).replace(tzinfo=None)
        return value


# BIGSERIAL on PostgreSQL; INTEGER PRIMARY KEY (the rowid) on SQLite.
_Id = BigInteger().with_variant(Integer, "sqlite")
metadata = MetaData()
ho_so_dang_ky = Table(
    TABLE,
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("ma_ho_so", String(64), nullable=False),
    Column("ma_ho_so_mot_cua", String(64)),  # the one-stop centre's code, when received there
    Column("ma_thu_tuc", String(64), nullable=False),
    Column("ten_thu_tuc", String(500), nullable=False),
    Column("linh_vuc", String(255)),
    Column("ma_don_vi_xu_ly", String(32), nullable=False),
    Column("ma_don_vi_tiep_nhan", String(32)),
    Column("ma_dvhc", String(8)),
    Column("ngay_nop", DateTime),
    Column("ngay_tiep_nhan", DateTime),  # nullable: a migration from the old system lost some
    Column("ngay_hen_tra", DateTime),
    Column("ngay_hoan_thanh", DateTime),
    Column("ngay_tra_ket_qua", DateTime),
    Column("hinh_thuc_nop", SmallInteger, nullable=False),
    Column("muc_do_dvc", SmallInteger),
    Column("trang_thai", String(32), nullable=False),
    Column("loai_nguoi_nop", String(32)),
    Column("so_cccd", String(20)),
    Column("le_phi", BigInteger, nullable=False),
    Column("thanh_toan_truc_tuyen", Boolean, nullable=False),
    Column("so_giay_to", SmallInteger),
    Column("so_giay_to_so_hoa", SmallInteger),
    Column("ket_qua_so_hoa", Boolean),
    Column("ngay_cap_nhat", _ChangeTime, nullable=False),
    Index("ix_ho_so_dang_ky_ngay_cap_nhat_id", "ngay_cap_nhat", "id"),
    Index("ix_ho_so_dang_ky_ngay_tiep_nhan", "ngay_tiep_nhan"),
)
lich_su_xu_ly = Table(
    HISTORY,
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("ho_so_id", BigInteger, nullable=False),
    Column("trang_thai_cu", String(32)),  # NULL on the first entry
    Column("trang_thai_moi", String(32), nullable=False),
    Column("thoi_gian", _ChangeTime, nullable=False),
    Column("ghi_chu", String(500)),
    Index("ix_lich_su_xu_ly_ho_so_id", "ho_so_id", "thoi_gian"),
)
COLUMNS: tuple[str, ...] = tuple(column.name for column in ho_so_dang_ky.columns)
HISTORY_COLUMNS: tuple[str, ...] = tuple(column.name for column in lich_su_xu_ly.columns)
_AT = {name: index for index, name in enumerate(COLUMNS)}
_CHUNK = 5000
T = TypeVar("T")


# -- planted defects ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Defect:
    kind: str
    plant: Callable[[list[Any]], None]  # spoils one generated row in place
    found: Callable[[Any], ColumnElement[bool]]  # SQL test for the planted value, never NULL


def _set(**values: Any) -> Callable[[list[Any]], None]:
    def plant(row: list[Any]) -> None:
        for name, value in values.items():
            row[_AT[name]] = value

    return plant


def _finished_early(row: list[Any]) -> None:
    row[_AT["trang_thai"]] = DA_GIAI_QUYET
    row[_AT["ngay_hoan_thanh"]] = row[_AT["ngay_tiep_nhan"]] - timedelta(days=3)
    row[_AT["ngay_tra_ket_qua"]] = None


def _short_citizen_id(row: list[Any]) -> None:
    # A digit lost when typed at the counter: 11 digits.
    row[_AT["loai_nguoi_nop"]] = "CA_NHAN"
    row[_AT["so_cccd"]] = f"0{PROVINCE}1{row[_AT['id']] % 10**7:07d}"


def _mojibake(row: list[Any]) -> None:
    name = unicodedata.normalize("NFC", row[_AT["ten_thu_tuc"]])
    row[_AT["ten_thu_tuc"]] = name.encode().decode("cp1252", errors="replace")


def _spaced_one_stop_code(row: list[Any]) -> None:
    # A one-stop code typed by hand with spaces for dashes.
    received = row[_AT["ngay_tiep_nhan"]]
    row[_AT["ma_ho_so_mot_cua"]] = f"000.00.31.H56 {received:%y%m%d} {9000 + row[_AT['id']] % 999}"


def _before_received(c: Any, name: str) -> ColumnElement[bool]:
    return and_(c[name].is_not(None), c.ngay_tiep_nhan.is_not(None), c[name] < c.ngay_tiep_nhan)


_DEFECTS = (
    _Defect("received_missing", _set(ngay_tiep_nhan=None), lambda c: c.ngay_tiep_nhan.is_(None)),
    _Defect(
        "unknown_status",
        _set(trang_thai="CHO_KY_SO"),  # "awaiting digital signature": a step Land added later
        lambda c: c.trang_thai.not_in(STATUSES),
    ),
    _Defect(
        "finished_before_received",
        _finished_early,
        lambda c: _before_received(c, "ngay_hoan_thanh"),
    ),
    _Defect(
        "malformed_procedure_code",
        _set(ma_thu_tuc="1.OO4227"),  # letter O for zero, typed by hand
        lambda c: c.ma_thu_tuc == "1.OO4227",
    ),
    _Defect(
        "malformed_citizen_id",
        _short_citizen_id,
        lambda c: and_(c.so_cccd.is_not(None), func.length(c.so_cccd) == 11),
    ),
    _Defect("unknown_channel", _set(hinh_thuc_nop=9), lambda c: c.hinh_thuc_nop.not_in(CHANNELS)),
    _Defect("legacy_encoded_name", _mojibake, lambda c: c.ten_thu_tuc.in_(sorted(_MOJIBAKE))),
    _Defect("blank_dossier_code", _set(ma_ho_so="  "), lambda c: func.trim(c.ma_ho_so) == ""),
    _Defect(
        "malformed_one_stop_code",
        _spaced_one_stop_code,
        lambda c: and_(c.ma_ho_so_mot_cua.is_not(None), c.ma_ho_so_mot_cua.like("% %")),
    ),
)
DEFECT_KINDS: tuple[str, ...] = tuple(defect.kind for defect in _DEFECTS)


def _valid(table: Table) -> ColumnElement[bool]:
    """Rows carrying none of the planted defects."""
    return not_(or_(*(defect.found(table.c) for defect in _DEFECTS)))


# -- public API -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Truth:
    """What `generate` loaded: counts the connector and the registry must reproduce."""

    rows: int
    malformed: int
    valid: int
    defects: dict[str, int]  # planted rows per defect kind (every kind listed)
    online: int  # valid rows submitted online (hinh_thuc_nop = 1)
    malformed_ids: tuple[int, ...] = field(repr=False)
    forwarded: int = 0  # rows received at a one-stop centre (all valid)
    forwarded_ids: tuple[int, ...] = field(default=(), repr=False)
    history: int = 0  # entries in lich_su_xu_ly
    defect_of: dict[int, str] = field(default_factory=dict, repr=False)  # id -> defect kind

    def as_json(self) -> str:
        """One JSON line with the counts (no ids), for scripts and benchmarks."""
        return json.dumps(
            {
                "rows": self.rows,
                "malformed": self.malformed,
                "valid": self.valid,
                "defects": self.defects,
                "online": self.online,
                "forwarded": self.forwarded,
                "history": self.history,
                "source": "land",
            }
        )


class Change(NamedTuple):
    """One entry of `lich_su_xu_ly`."""

    status_from: str | None
    status_to: str
    at: datetime  # naive local time
    note: str | None


def create_schema(engine: Engine) -> None:
    """Drop and create both tables with their indexes."""
    with engine.begin() as conn:
        _create(conn, indexes=True)


def generate(
    url: str,
    *,
    rows: int,
    seed: int,
    malformed_share: float = 0.0,
    forwarded: int = 0,
) -> Truth:
    """Rebuild the Land database at `url` with `rows` dossiers drawn from `seed`.

    `forwarded` of them are the dossiers `scenario.forwarded(seed, sector="land", ...)` gives:
    received at a one-stop centre, they carry its code in `ma_ho_so_mot_cua` and are never
    malformed. `malformed_share` of the rows (rounded) carry one defect each, the kinds dealt
    round-robin over `DEFECT_KINDS`. Rows are streamed: memory stays flat whatever `rows` is.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if not 0.0 <= malformed_share <= 1.0:
        raise ValueError(f"malformed_share must be within 0..1, got {malformed_share}")
    malformed = round(rows * malformed_share)
    if not 0 <= forwarded <= rows - malformed:
        raise ValueError(
            f"forwarded must be within 0..{rows - malformed} (rows less malformed), got {forwarded}"
        )
    picker = random.Random(f"land-plan-{seed}")
    forwarded_ids = sorted(picker.sample(range(1, rows + 1), forwarded))
    taken = set(forwarded_ids)
    free = [ident for ident in range(1, rows + 1) if ident not in taken]
    chosen = sorted(picker.sample(free, malformed))
    plan = {ident: _DEFECTS[i % len(_DEFECTS)] for i, ident in enumerate(chosen)}
    incoming = dict(
        zip(forwarded_ids, scenario.forwarded(seed, sector="land", count=forwarded), strict=True)
    )
    stats = _Stats()
    stream = _generate(rows, seed, plan, incoming, stats)
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            _create(conn, indexes=False)
        # Indexes are built after the load: one sort instead of a million index updates.
        if engine.dialect.name == "postgresql":
            _copy(engine, stream)
        else:
            with engine.begin() as conn:
                for dossiers, history in stream:
                    conn.execute(
                        insert(ho_so_dang_ky),
                        [dict(zip(COLUMNS, row, strict=True)) for row in dossiers],
                    )
                    conn.execute(
                        insert(lich_su_xu_ly),
                        [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in history],
                    )
        with engine.begin() as conn:
            for table in (ho_so_dang_ky, lich_su_xu_ly):
                for index in table.indexes:
                    index.create(conn)
    finally:
        engine.dispose()
    counts = dict.fromkeys(DEFECT_KINDS, 0)
    for defect in plan.values():
        counts[defect.kind] += 1
    return Truth(
        rows=rows,
        malformed=len(plan),
        valid=rows - len(plan),
        defects=counts,
        online=stats.online,
        malformed_ids=tuple(chosen),
        forwarded=forwarded,
        forwarded_ids=tuple(forwarded_ids),
        history=stats.history,
        defect_of={ident: defect.kind for ident, defect in plan.items()},
    )


def advance(url: str, *, share: float, seed: int, steps: int = 1) -> list[int]:
    """Move `share` of the valid rows (rounded) `steps` status steps on; return their ids.

    The rows are drawn from `seed` among valid dossiers still open. Each step picks the next
    status as the live system would (from DANG_XU_LY a dossier may be resolved, sent back for a
    supplement, suspended or held for financial obligations), appends it to `lich_su_xu_ly`,
    and stamps the row with a `ngay_cap_nhat` later than every other row, increasing with id.
    Leaving CHO_BO_SUNG or TAM_DUNG moves `ngay_hen_tra` on by the time spent there; resolving
    sets `ngay_hoan_thanh`, returning sets `ngay_tra_ket_qua`. A dossier reaching a final
    status stops early. Malformed rows are never touched. Raises `ValueError` when too few
    rows can move.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be within 0..1, got {share}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    c = ho_so_dang_ky.c
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            valid = _valid(ho_so_dang_ky)
            total = conn.execute(select(func.count()).where(valid)).scalar_one()
            movable = conn.execute(
                select(
                    c.id,
                    c.trang_thai,
                    c.ngay_hen_tra,
                    c.ngay_hoan_thanh,
                    c.ngay_tra_ket_qua,
                    c.ngay_cap_nhat,
                )
                .where(valid, c.trang_thai.in_(OPEN))
                .order_by(c.id)
            ).all()
            wanted = round(total * share)
            if wanted > len(movable):
                raise ValueError(
                    f"cannot advance {wanted} rows ({share:.1%} of {total} valid): only "
                    f"{len(movable)} are still open"
                )
            rng = random.Random(f"land-advance-{seed}")
            picked = sorted(rng.sample(movable, wanted), key=lambda row: row.id)
            clock = _latest(conn)
            changed: list[dict[str, Any]] = []
            logged: list[dict[str, Any]] = []
            for row in picked:
                status, entered = row.trang_thai, row.ngay_cap_nhat
                due, finished, returned = (
                    row.ngay_hen_tra,
                    row.ngay_hoan_thanh,
                    row.ngay_tra_ket_qua,
                )
                for _ in range(steps):
                    if status not in NEXT_STEPS:
                        break
                    clock += timedelta(milliseconds=1)
                    target = _choose(rng, NEXT_STEPS[status])
                    if status in PAUSED and due is not None:
                        due += timedelta(seconds=round((clock - entered).total_seconds()))
                    if target == DA_GIAI_QUYET:
                        finished = clock.replace(microsecond=0)
                    elif target == DA_TRA:
                        returned = clock.replace(microsecond=0)
                    logged.append(
                        {
                            "b_ho_so_id": row.id,
                            "b_from": status,
                            "b_to": target,
                            "b_at": clock,
                            "b_note": rng.choice(_NOTES[target]),
                        }
                    )
                    status, entered = target, clock
                changed.append(
                    {
                        "b_id": row.id,
                        "b_status": status,
                        "b_due": due,
                        "b_finished": finished,
                        "b_returned": returned,
                        "b_when": entered,
                    }
                )
            change = (
                update(ho_so_dang_ky)
                .where(c.id == bindparam("b_id"))
                .values(
                    trang_thai=bindparam("b_status"),
                    ngay_hen_tra=bindparam("b_due"),
                    ngay_hoan_thanh=bindparam("b_finished"),
                    ngay_tra_ket_qua=bindparam("b_returned"),
                    ngay_cap_nhat=bindparam("b_when"),
                )
            )
            for batch in _chunks(changed, _CHUNK):
                conn.execute(change, batch)
            _log(conn, logged)
    finally:
        engine.dispose()
    return [row.id for row in picked]


def repair(url: str, *, ids: Sequence[int]) -> None:
    """Fix rows at the source, as an operator would: every column valid, `ngay_cap_nhat` newest.

    Valid columns are left as they are; each repaired row gets a `ngay_cap_nhat` later than
    every other row, and a repaired status is logged in `lich_su_xu_ly`. Raises `ValueError`
    naming ids that are not in the table.
    """
    wanted = sorted(set(ids))
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            found: dict[int, dict[str, Any]] = {}
            for some in _chunks(wanted, 1000):
                for stored in conn.execute(
                    select(ho_so_dang_ky).where(ho_so_dang_ky.c.id.in_(some))
                ):
                    found[stored.id] = dict(stored._mapping)
            missing = [ident for ident in wanted if ident not in found]
            if missing:
                raise ValueError(f"no rows with id {missing[:10]} in {TABLE}")
            clock = _latest(conn)
            fixed: list[dict[str, Any]] = []
            logged: list[dict[str, Any]] = []
            for ident in wanted:
                clock += timedelta(milliseconds=1)
                before = found[ident]
                after = _repaired(before, clock)
                fixed.append(after)
                if after["trang_thai"] != before["trang_thai"]:
                    logged.append(
                        {
                            "b_ho_so_id": ident,
                            "b_from": before["trang_thai"],
                            "b_to": after["trang_thai"],
                            "b_at": clock,
                            "b_note": "Cập nhật lại trạng thái (sửa dữ liệu)",
                        }
                    )
            uncoded = [row for row in fixed if not _DOSSIER_CODE.fullmatch(row["ma_ho_so"] or "")]
            if uncoded:
                codes = _CodeBook(conn, {_code_prefix(row) for row in uncoded})
                for row in uncoded:
                    row["ma_ho_so"] = codes.new(_code_prefix(row))
            change = (
                update(ho_so_dang_ky)
                .where(ho_so_dang_ky.c.id == bindparam("b_id"))
                .values({name: bindparam(f"b_{name}") for name in COLUMNS if name != "id"})
            )
            for batch in _chunks(fixed, _CHUNK):
                conn.execute(change, [{f"b_{k}": v for k, v in row.items()} for row in batch])
            _log(conn, logged)
    finally:
        engine.dispose()


def status_of(url: str, ids: Sequence[int]) -> dict[int, str]:
    """`trang_thai` of the given rows, by id (absent ids are left out)."""
    c = ho_so_dang_ky.c
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return {
                ident: status
                for chunk in _chunks(sorted(set(ids)), 1000)
                for ident, status in conn.execute(select(c.id, c.trang_thai).where(c.id.in_(chunk)))
            }
    finally:
        engine.dispose()


def history_of(url: str, ids: Sequence[int]) -> dict[int, list[Change]]:
    """The status log of the given dossiers, oldest first (absent ids are left out)."""
    h = lich_su_xu_ly.c
    engine = _engine(url)
    found: dict[int, list[Change]] = {}
    try:
        with engine.connect() as conn:
            for chunk in _chunks(sorted(set(ids)), 1000):
                query = (
                    select(h.ho_so_id, h.trang_thai_cu, h.trang_thai_moi, h.thoi_gian, h.ghi_chu)
                    .where(h.ho_so_id.in_(chunk))
                    .order_by(h.ho_so_id, h.thoi_gian, h.id)
                )
                for ident, *entry in conn.execute(query):
                    found.setdefault(ident, []).append(Change(*entry))
    finally:
        engine.dispose()
    return found


# -- generation -----------------------------------------------------------------------------
@dataclass
class _Stats:
    online: int = 0
    history: int = 0


def _choose(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    """One status drawn from `options`, whose weights sum to 1."""
    u = rng.random()
    for status, weight in options:
        u -= weight
        if u < 0:
            return status
    return options[-1][0]


def _walk(
    r: Callable[[], float], rng: random.Random, ident: int, received: datetime, days: int
) -> tuple[list[list[Any]], str, datetime, datetime | None, datetime | None]:
    """A dossier's life from acceptance up to END: its log, status, due, finished, returned.

    Each visit to DANG_XU_LY makes resolution likelier, but a dossier can bounce between
    processing, supplements, suspensions and financial obligations many times; some stall
    (the long-running dossiers every land office has).
    """
    at = received + timedelta(microseconds=int(r() * 999_999))
    log = [[ident, None, TIEP_NHAN, at, _NOTES[TIEP_NHAN][0]]]
    due = datetime.combine(received.date(), datetime.min.time()) + timedelta(
        days=days, hours=16, minutes=30
    )
    limit = _MAX_STEPS if r() >= 0.18 else 1 + int(r() * 6)
    status, visits = TIEP_NHAN, 0
    finished = returned = None
    while status in NEXT_STEPS and len(log) <= limit:
        if status == DANG_XU_LY:
            resolve = min(0.25 + 0.2 * visits, 0.95)
            rest = 1.0 - resolve
            options = (
                (DA_GIAI_QUYET, resolve),
                (CHO_BO_SUNG, 0.45 * rest),
                (CHO_NGHIA_VU_TC, 0.35 * rest),
                (TAM_DUNG, 0.20 * rest),
            )
            target = _choose(rng, options)
        else:
            target = _choose(rng, NEXT_STEPS[status])
        low, high = _STAY[status]
        stay = timedelta(seconds=low + r() * (high - low))
        if at + stay >= END:
            break  # still in `status` when the data ends
        at += stay
        if status in PAUSED:
            due += timedelta(seconds=round(stay.total_seconds()))
        if target == DANG_XU_LY:
            visits += 1
        elif target == DA_GIAI_QUYET:
            finished = at.replace(microsecond=0)
        elif target == DA_TRA:
            returned = at.replace(microsecond=0)
        notes = _NOTES[target]
        log.append([ident, status, target, at, notes[int(r() * len(notes))]])
        status = target
    return log, status, due, finished, returned


def _generate(
    rows: int,
    seed: int,
    plan: dict[int, _Defect],
    incoming: dict[int, scenario.Forwarded],
    stats: _Stats,
) -> Iterator[tuple[list[list[Any]], list[list[Any]]]]:
    """Chunks of (dossier rows, their history rows), in id order."""
    # The row stream has its own generator, so the same seed gives the same dossiers
    # whatever share of them is then spoiled.
    rng = random.Random(f"land-rows-{seed}")
    r = rng.random
    everything = [p for p in PROCEDURES for _ in range(p.weight)]
    online_capable = [p for p in everything if p.level >= LEVEL_PARTIAL]
    nfd_names = {p.name: unicodedata.normalize("NFD", p.name) for p in PROCEDURES}
    n_days = (END - START).days
    reform_day = (TWO_LEVEL_FROM - START).days
    sequence: dict[tuple[str, str], int] = {}  # Land's daily receipt counter per office
    online_share = scenario.ONLINE_SHARE["land"]
    history_id = 0
    dossiers: list[list[Any]] = []
    history: list[list[Any]] = []

    for ident in range(1, rows + 1):
        defect = plan.get(ident)
        centre = incoming.get(ident)
        if centre is not None:
            # Received at a one-stop centre: its time, place, procedure and channel.
            proc = _BY_CODE[centre.procedure_code]
            received = centre.received_at
            submitted = received
            channel = ONLINE if centre.channel == 2 else IN_PERSON
            locality, received_by = centre.locality_code, centre.centre
            agency = PROVINCE_OFFICE if len(locality) == 2 else BRANCHES[int(r() * len(BRANCHES))]
            one_stop_code: str | None = centre.national_code
        else:
            if r() < online_share:
                channel = ONLINE
                proc = online_capable[int(r() * len(online_capable))]
            else:
                channel = IN_PERSON if r() < 0.97 else POSTAL
                proc = everything[int(r() * len(everything))]
            day = START + timedelta(days=int(r() * n_days))
            if channel == ONLINE:
                submitted = day + timedelta(seconds=int(r() * 86400))
                received = min(submitted + timedelta(seconds=int(r() * 57600)), LAST)
            else:  # at the counter in office hours; by post a few days after posting
                received = day + timedelta(seconds=27000 + int(r() * 34200))
                submitted = received
                if channel == POSTAL:
                    submitted = max(received - timedelta(days=1 + int(r() * 3)), START)
            if (received - START).days >= reform_day:
                if r() < 0.35:
                    locality, agency = PROVINCE, PROVINCE_OFFICE
                else:
                    k = int(r() * len(COMMUNES_TWO_LEVEL))
                    locality, agency = COMMUNES_TWO_LEVEL[k], BRANCHES[k % len(BRANCHES)]
            else:
                u = r()
                if u < 0.3:
                    locality, agency = PROVINCE, PROVINCE_OFFICE
                elif u < 0.75:
                    k = int(r() * len(DISTRICTS))
                    locality, agency = DISTRICTS[k], BRANCHES[k % len(BRANCHES)]
                else:
                    k = int(r() * len(COMMUNES_THREE_LEVEL))
                    locality, agency = COMMUNES_THREE_LEVEL[k], BRANCHES[k % len(BRANCHES)]
            received_by = agency
            one_stop_code = None

        day_code = f"{received:%y%m%d}"
        seq = sequence[(agency, day_code)] = sequence.get((agency, day_code), 0) + 1
        log, status, due, finished, returned = _walk(r, rng, ident, received, proc.days)
        for entry in log:
            history_id += 1
            history.append([history_id, *entry])
        stats.history += len(log)

        u = r()
        if u < 0.82:
            applicant = "CA_NHAN"
            if r() < 0.95:  # citizen ID: province of birth, century/sex, year, serial
                citizen_id: str | None = (
                    f"0{PROVINCE}{int(r() * 4)}{int(r() * 100):02d}{int(r() * 10**6):06d}"
                )
            else:
                citizen_id = f"{int(r() * 10**9):09d}"  # an old 9-digit ID card
        else:
            applicant = APPLICANT_TYPES[1] if u < 0.95 else APPLICANT_TYPES[2 + int(r() * 2)]
            citizen_id = None
        fee = proc.fee
        paid = bool(fee) and r() < (0.7 if channel == ONLINE else 0.05)
        docs = 2 + int(r() * 9)
        digitised = docs if channel == ONLINE else int(r() * (docs + 1))
        result_digitised = finished is not None and r() < 0.6

        row = [
            ident,
            f"{agency}-{day_code}-{seq:04d}",
            one_stop_code,
            proc.code,
            nfd_names[proc.name] if r() < 0.03 else proc.name,
            proc.sector,
            agency,
            received_by,
            locality,
            submitted,
            received,
            due,
            finished,
            returned,
            channel,
            proc.level,
            status,
            applicant,
            citizen_id,
            fee,
            paid,
            docs,
            digitised,
            result_digitised,
            log[-1][3],  # the last change is the last status change
        ]
        if defect is not None:
            defect.plant(row)
        elif channel == ONLINE:
            stats.online += 1
        dossiers.append(row)
        if len(dossiers) == _CHUNK:
            yield dossiers, history
            dossiers, history = [], []
    if dossiers:
        yield dossiers, history


def _copy(engine: Engine, stream: Iterable[tuple[list[list[Any]], list[list[Any]]]]) -> None:
    from psycopg import sql

    def statement(table: str, columns: tuple[str, ...]) -> sql.Composed:
        return sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )

    stamp_at, time_at = _AT["ngay_cap_nhat"], HISTORY_COLUMNS.index("thoi_gian")
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            for dossiers, history in stream:
                # COPY bypasses the column type: give timestamptz its zone here.
                with cursor.copy(statement(TABLE, COLUMNS)) as copy:
                    for row in dossiers:
                        row[stamp_at] = row[stamp_at].replace(tzinfo=LOCAL_TZ)
                        copy.write_row(row)
                with cursor.copy(statement(HISTORY, HISTORY_COLUMNS)) as copy:
                    for row in history:
                        row[time_at] = row[time_at].replace(tzinfo=LOCAL_TZ)
                        copy.write_row(row)
            # Ids were given explicitly: move the sequences past them for later inserts.
            for table in (TABLE, HISTORY):
                cursor.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({}, 'id'), "
                        "GREATEST((SELECT max(id) FROM {}), 1))"
                    ).format(sql.Literal(table), sql.Identifier(table))
                )
        raw.commit()
    finally:
        raw.close()


# -- repair ---------------------------------------------------------------------------------
class _CodeBook:
    """Hands out unused receipt codes `{office}-{yyMMdd}-{seq}` for repaired rows."""

    def __init__(self, conn: Connection, prefixes: Iterable[str]) -> None:
        self._next = dict.fromkeys(prefixes, 1)
        # ma_ho_so has no index: one plain scan filtered here beats a LIKE per prefix.
        codes = select(ho_so_dang_ky.c.ma_ho_so).execution_options(yield_per=10_000)
        for code in conn.execute(codes).scalars():
            head, _, tail = code.rpartition("-")
            prefix = f"{head}-"
            if prefix in self._next and tail.isdigit():
                self._next[prefix] = max(self._next[prefix], int(tail) + 1)

    def new(self, prefix: str) -> str:
        seq = self._next[prefix]
        self._next[prefix] = seq + 1
        return f"{prefix}{seq:04d}"


def _code_prefix(row: dict[str, Any]) -> str:
    return f"{row['ma_don_vi_xu_ly']}-{row['ngay_tiep_nhan']:%y%m%d}-"


def _repaired(row: dict[str, Any], when: datetime) -> dict[str, Any]:
    """The row with every column valid; a blank or malformed ma_ho_so is left to the caller."""
    fixed = dict(row)
    name = fixed["ten_thu_tuc"] or ""
    procedure = (
        _MOJIBAKE.get(name)
        or _BY_NAME.get(unicodedata.normalize("NFC", name))
        or _BY_CODE.get(fixed["ma_thu_tuc"])
        or PROCEDURES[0]
    )
    if fixed["ma_thu_tuc"] not in _BY_CODE:
        fixed["ma_thu_tuc"] = procedure.code
    if name in _MOJIBAKE or not name:
        fixed["ten_thu_tuc"] = procedure.name

    received = fixed["ngay_tiep_nhan"] or fixed["ngay_nop"] or when.replace(microsecond=0)
    fixed["ngay_tiep_nhan"] = received
    if fixed["ngay_nop"] is not None and fixed["ngay_nop"] > received:
        fixed["ngay_nop"] = received
    if fixed["ngay_hen_tra"] is None or fixed["ngay_hen_tra"] < received:
        fixed["ngay_hen_tra"] = received + timedelta(days=procedure.days)
    if fixed["trang_thai"] not in STATUSES:
        fixed["trang_thai"] = DANG_XU_LY if fixed["ngay_hoan_thanh"] is None else DA_GIAI_QUYET
    later = min(received + timedelta(days=1), when.replace(microsecond=0))
    for column in ("ngay_hoan_thanh", "ngay_tra_ket_qua"):
        if fixed[column] is not None and fixed[column] < received:
            fixed[column] = later
    if fixed["trang_thai"] in (DA_GIAI_QUYET, DA_TRA) and fixed["ngay_hoan_thanh"] is None:
        fixed["ngay_hoan_thanh"] = later
    if fixed["trang_thai"] == DA_TRA and fixed["ngay_tra_ket_qua"] is None:
        fixed["ngay_tra_ket_qua"] = later

    if fixed["hinh_thuc_nop"] not in CHANNELS:
        fixed["hinh_thuc_nop"] = IN_PERSON
    citizen_id = fixed["so_cccd"]
    if citizen_id is not None and not _CITIZEN_ID.fullmatch(citizen_id):
        # The operator looks the applicant up again; here an id-derived number stands in.
        fixed["so_cccd"] = f"0{PROVINCE}2{fixed['id'] % 10**8:08d}"
    one_stop = fixed["ma_ho_so_mot_cua"]
    if one_stop is not None and not _DOSSIER_CODE.fullmatch(one_stop):
        fixed["ma_ho_so_mot_cua"] = "-".join(one_stop.split())
    fixed["ngay_cap_nhat"] = when
    return fixed


# -- helpers --------------------------------------------------------------------------------
def _engine(url: str) -> Engine:
    return create_engine(url)


def _create(conn: Connection, *, indexes: bool) -> None:
    for table in (lich_su_xu_ly, ho_so_dang_ky):
        table.drop(conn, checkfirst=True)
    for table in (ho_so_dang_ky, lich_su_xu_ly):
        conn.execute(CreateTable(table))
        if indexes:
            for index in table.indexes:
                index.create(conn)


def _log(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """Append status changes to lich_su_xu_ly (ids from its own sequence)."""
    add = insert(lich_su_xu_ly).values(
        ho_so_id=bindparam("b_ho_so_id"),
        trang_thai_cu=bindparam("b_from"),
        trang_thai_moi=bindparam("b_to"),
        thoi_gian=bindparam("b_at"),
        ghi_chu=bindparam("b_note"),
    )
    for batch in _chunks(entries, _CHUNK):
        conn.execute(add, batch)


def _latest(conn: Connection) -> datetime:
    """The latest change (naive local), never before END: changes made now come after the data."""
    latest = conn.execute(select(func.max(ho_so_dang_ky.c.ngay_cap_nhat))).scalar_one()
    return END if latest is None else max(latest, END)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
