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

import random
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ClassVar, NamedTuple

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
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from models.localtime import LOCAL
from simulators import common, database, scenario
from simulators.database import DOSSIER_CODE, RowDefect, chunks

TABLE = "ho_so_dang_ky"
HISTORY = "lich_su_xu_ly"

START = scenario.START
END = scenario.END  # exclusive: nothing is received or changed from here on
TWO_LEVEL_FROM = scenario.TWO_LEVEL_FROM
# Vietnam keeps UTC+7 all year: the zone Land stamps its change times with.

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
            return value if value.tzinfo else value.replace(tzinfo=LOCAL)
        return value.astimezone(LOCAL).replace(tzinfo=None) if value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(LOCAL).replace(tzinfo=None)
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
_TABLES = (ho_so_dang_ky, lich_su_xu_ly)  # dossiers first: the history refers to them
_AT = {name: index for index, name in enumerate(COLUMNS)}


# -- planted defects ------------------------------------------------------------------------
_set = partial(database.assign, _AT)


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
    RowDefect("received_missing", _set(ngay_tiep_nhan=None), lambda c: c.ngay_tiep_nhan.is_(None)),
    RowDefect(
        "unknown_status",
        _set(trang_thai="CHO_KY_SO"),  # "awaiting digital signature": a step Land added later
        lambda c: c.trang_thai.not_in(STATUSES),
    ),
    RowDefect(
        "finished_before_received",
        _finished_early,
        lambda c: _before_received(c, "ngay_hoan_thanh"),
    ),
    RowDefect(
        "malformed_procedure_code",
        _set(ma_thu_tuc="1.OO4227"),  # letter O for zero, typed by hand
        lambda c: c.ma_thu_tuc == "1.OO4227",
    ),
    RowDefect(
        "malformed_citizen_id",
        _short_citizen_id,
        lambda c: and_(c.so_cccd.is_not(None), func.length(c.so_cccd) == 11),
    ),
    RowDefect("unknown_channel", _set(hinh_thuc_nop=9), lambda c: c.hinh_thuc_nop.not_in(CHANNELS)),
    RowDefect("legacy_encoded_name", _mojibake, lambda c: c.ten_thu_tuc.in_(sorted(_MOJIBAKE))),
    RowDefect("blank_dossier_code", _set(ma_ho_so="  "), lambda c: func.trim(c.ma_ho_so) == ""),
    RowDefect(
        "malformed_one_stop_code",
        _spaced_one_stop_code,
        lambda c: and_(c.ma_ho_so_mot_cua.is_not(None), c.ma_ho_so_mot_cua.like("% %")),
    ),
)
DEFECT_KINDS: tuple[str, ...] = tuple(defect.kind for defect in _DEFECTS)
_VALID = database.valid(ho_so_dang_ky, _DEFECTS)


# -- public API -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Truth(common.Truth[int]):
    """What `generate` loaded; `online` counts valid rows with hinh_thuc_nop = 1."""

    source: ClassVar[str] = "land"
    forwarded: int = 0  # rows received at a one-stop centre (all valid)
    forwarded_ids: tuple[int, ...] = field(default=(), repr=False)
    history: int = 0  # entries in lich_su_xu_ly
    defect_of: dict[int, str] = field(default_factory=dict, repr=False)  # id -> defect kind

    def own_counts(self) -> dict[str, Any]:
        return {"forwarded": self.forwarded, "history": self.history}


class Change(NamedTuple):
    """One entry of `lich_su_xu_ly`."""

    status_from: str | None
    status_to: str
    at: datetime  # naive local time
    note: str | None


def create_schema(engine: Engine) -> None:
    """Drop and create both tables with their indexes."""
    with engine.begin() as conn:
        database.create(conn, _TABLES, indexes=True)


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
    malformed = common.malformed_count(rows, malformed_share)
    if not 0 <= forwarded <= rows - malformed:
        raise ValueError(
            f"forwarded must be within 0..{rows - malformed} (rows less malformed), got {forwarded}"
        )
    picker = random.Random(f"land-plan-{seed}")
    forwarded_ids, plan = common.deal(
        picker, rows, forwarded=forwarded, malformed=malformed, defects=_DEFECTS
    )
    incoming = dict(
        zip(forwarded_ids, scenario.forwarded(seed, sector="land", count=forwarded), strict=True)
    )
    stats = _Stats()
    database.fill(url, _TABLES, _generate(rows, seed, plan, incoming, stats))
    return Truth.of_plan(
        plan,
        rows=rows,
        kinds=DEFECT_KINDS,
        online=stats.online,
        ident=int,
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
    common.check_share("share", share)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    c = ho_so_dang_ky.c
    with database.opened(url) as engine, engine.begin() as conn:
        total = conn.execute(select(func.count()).where(_VALID)).scalar_one()
        movable = conn.execute(
            select(
                c.id,
                c.trang_thai,
                c.ngay_hen_tra,
                c.ngay_hoan_thanh,
                c.ngay_tra_ket_qua,
                c.ngay_cap_nhat,
            )
            .where(_VALID, c.trang_thai.in_(OPEN))
            .order_by(c.id)
        ).all()
        rng = random.Random(f"land-advance-{seed}")  # also draws each dossier's steps
        picked = common.draw(
            movable,
            valid=total,
            share=share,
            rng=rng,
            order=lambda row: row.id,
            verb="advance",
            able="are still open",
        )
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
        for batch in chunks(changed, database.CHUNK):
            conn.execute(change, batch)
        _log(conn, logged)
    return [row.id for row in picked]


def repair(url: str, *, ids: Sequence[int]) -> None:
    """Fix rows at the source, as an operator would: every column valid, `ngay_cap_nhat` newest.

    Valid columns are left as they are; each repaired row gets a `ngay_cap_nhat` later than
    every other row, and a repaired status is logged in `lich_su_xu_ly`. Raises `ValueError`
    naming ids that are not in the table.
    """
    wanted = sorted(set(ids))
    with database.opened(url) as engine, engine.begin() as conn:
        found = database.fetch(conn, ho_so_dang_ky, wanted)
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
        database.recode(
            conn,
            fixed,
            ho_so_dang_ky.c.ma_ho_so,
            agency="ma_don_vi_xu_ly",
            received="ngay_tiep_nhan",
        )
        database.rewrite(conn, ho_so_dang_ky, fixed)
        _log(conn, logged)


def status_of(url: str, ids: Sequence[int]) -> dict[int, str]:
    """`trang_thai` of the given rows, by id (absent ids are left out)."""
    return database.column_of(url, ho_so_dang_ky.c.trang_thai, ids)


def history_of(url: str, ids: Sequence[int]) -> dict[int, list[Change]]:
    """The status log of the given dossiers, oldest first (absent ids are left out)."""
    h = lich_su_xu_ly.c
    found: dict[int, list[Change]] = {}
    with database.opened(url) as engine, engine.connect() as conn:
        for chunk in chunks(sorted(set(ids)), 1000):
            query = (
                select(h.ho_so_id, h.trang_thai_cu, h.trang_thai_moi, h.thoi_gian, h.ghi_chu)
                .where(h.ho_so_id.in_(chunk))
                .order_by(h.ho_so_id, h.thoi_gian, h.id)
            )
            for ident, *entry in conn.execute(query):
                found.setdefault(ident, []).append(Change(*entry))
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
    plan: dict[int, RowDefect],
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
            submitted, received = common.arrival(
                r, day, online=channel == ONLINE, postal=channel == POSTAL, online_wait=57600
            )
            locality, agency = common.place(
                r,
                two_level=(received - START).days >= reform_day,
                province=PROVINCE_OFFICE,
                offices=BRANCHES,
                province_share=0.35,
                districts_below=0.75,
            )
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
        if len(dossiers) == database.CHUNK:
            yield dossiers, history
            dossiers, history = [], []
    if dossiers:
        yield dossiers, history


# -- repair ---------------------------------------------------------------------------------
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

    received = database.repair_receipt(
        fixed,
        when,
        days=procedure.days,
        submitted="ngay_nop",
        received="ngay_tiep_nhan",
        due="ngay_hen_tra",
    )
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
    if one_stop is not None and not DOSSIER_CODE.fullmatch(one_stop):
        fixed["ma_ho_so_mot_cua"] = "-".join(one_stop.split())
    fixed["ngay_cap_nhat"] = when
    return fixed


# -- helpers --------------------------------------------------------------------------------
def _log(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """Append status changes to lich_su_xu_ly (ids from its own sequence)."""
    add = insert(lich_su_xu_ly).values(
        ho_so_id=bindparam("b_ho_so_id"),
        trang_thai_cu=bindparam("b_from"),
        trang_thai_moi=bindparam("b_to"),
        thoi_gian=bindparam("b_at"),
        ghi_chu=bindparam("b_note"),
    )
    for batch in chunks(entries, database.CHUNK):
        conn.execute(add, batch)


def _latest(conn: Connection) -> datetime:
    """The latest change (naive local), never before END: changes made now come after the data."""
    latest = conn.execute(select(func.max(ho_so_dang_ky.c.ngay_cap_nhat))).scalar_one()
    return END if latest is None else max(latest, END)
