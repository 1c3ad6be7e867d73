"""The Tax office's reference database: its own native schema, a seeded generator and faults.

The Tax office keeps its dossiers in one table, `tb_hoso`, in the shape its own software chose:
upper-case Vietnamese column names, numeric status codes of its own, string channel and
service-level codes, naive local times, tax codes (MST) as applicant identifiers. Nothing here
knows the canonical record; translating is the job of `connectors/tax.py`.

* `generate` rebuilds the table from a seed: the same seed and arguments give the same rows on
  SQLite, MariaDB and PostgreSQL. It can plant malformed rows, each with exactly one defect the
  connector must reject with a specific reason, and returns the `Truth` about what it planted.
* `touch` and `repair` change rows the way the live system does (a dossier moves on; an
  operator fixes bad data at the source), always with a last-change time past every other row,
  so an incremental sync must pick them up.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar, NamedTuple

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    and_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import mysql

from simulators import common, database, scenario
from simulators.database import RowDefect, chunks

TABLE = "tb_hoso"

START = scenario.START
END = scenario.END  # exclusive: nothing is received or changed from here on
TWO_LEVEL_FROM = scenario.TWO_LEVEL_FROM

# -- the Tax office's own vocabulary --------------------------------------------------------
# TRANG_THAI: Tax's numeric status codes (not the shared 1-10 codes).
WAITING = 0  # chờ tiếp nhận
ACCEPTED = 1  # đã tiếp nhận
IN_PROGRESS = 2  # đang xử lý
SUPPLEMENT = 3  # chờ bổ sung hồ sơ
AWAITING_PAYMENT = 4  # chờ thực hiện nghĩa vụ tài chính
RESOLVED = 5  # đã giải quyết, chưa trả
RETURNED = 6  # đã trả kết quả
REFUSED = 7  # từ chối tiếp nhận
WITHDRAWN = 8  # công dân rút hồ sơ
STOPPED = 9  # dừng xử lý
STATUSES = tuple(range(10))
# The next step of a dossier still moving; `touch` applies it.
NEXT_STATUS = {
    WAITING: ACCEPTED,
    ACCEPTED: IN_PROGRESS,
    IN_PROGRESS: RESOLVED,
    SUPPLEMENT: IN_PROGRESS,
    AWAITING_PAYMENT: RESOLVED,
    RESOLVED: RETURNED,
}

IN_PERSON, ONLINE, POSTAL = "TRUC_TIEP", "TRUC_TUYEN", "BUU_CHINH"
CHANNELS = (IN_PERSON, ONLINE, POSTAL)
FULL, PARTIAL, OFFLINE = "TOAN_TRINH", "MOT_PHAN", "KHONG"
SERVICE_LEVELS = (FULL, PARTIAL, OFFLINE)
APPLICANT_TYPES = (1, 2, 3, 4)  # citizen, enterprise, state body, other organisation

PROVINCE = scenario.PROVINCE_LOCALITY
PROVINCE_AGENCY = "000.00.06.H56"  # the provincial tax department
TEAM_AGENCIES = ("000.21.06.H56", "000.22.06.H56", "000.23.06.H56", "000.24.06.H56")
AGENCIES = (PROVINCE_AGENCY, *TEAM_AGENCIES)
DISTRICTS = scenario.DISTRICTS
COMMUNES_THREE_LEVEL = scenario.COMMUNES_THREE_LEVEL
COMMUNES_TWO_LEVEL = scenario.COMMUNES_TWO_LEVEL


class Procedure(NamedTuple):
    code: str
    name: str
    sector: str
    level: str
    days: int  # statutory processing time
    fee: int  # đồng; 0 = free
    weight: int  # relative volume


PROCEDURES = (
    Procedure("1.000123", "Đăng ký thuế lần đầu", "Thuế", FULL, 3, 0, 14),
    Procedure("1.000456", "Thay đổi thông tin đăng ký thuế", "Thuế", FULL, 3, 0, 12),
    Procedure("2.000288", "Khai thuế giá trị gia tăng", "Thuế", FULL, 1, 0, 16),
    Procedure("2.000315", "Quyết toán thuế thu nhập cá nhân", "Thuế", FULL, 5, 0, 10),
    Procedure("1.007541", "Hoàn thuế thu nhập cá nhân", "Thuế", PARTIAL, 6, 0, 6),
    Procedure("1.010094", "Đăng ký sử dụng hóa đơn điện tử", "Hóa đơn", FULL, 1, 0, 9),
    Procedure("1.002367", "Mua hóa đơn do cơ quan thuế đặt in", "Hóa đơn", PARTIAL, 2, 45000, 8),
    Procedure("1.004512", "Cấp bản sao giấy chứng nhận đăng ký thuế", "Thuế", PARTIAL, 3, 20000, 6),
    Procedure("1.003019", "Xác nhận việc thực hiện nghĩa vụ thuế", "Thuế", PARTIAL, 5, 0, 6),
    Procedure("2.001872", "Khai lệ phí trước bạ nhà, đất", "Lệ phí trước bạ", PARTIAL, 5, 0, 5),
    Procedure("2.000960", "Miễn, giảm thuế sử dụng đất phi nông nghiệp", "Thuế", OFFLINE, 10, 0, 4),
    Procedure("1.001640", "Gia hạn nộp thuế", "Thuế", OFFLINE, 10, 0, 4),
)
_PROCEDURE_BY_NAME = {p.name: p for p in PROCEDURES}
_PROCEDURE_CODES = frozenset(
    code for p in PROCEDURES for code in (p.code, f"{p.code}.000.00.00.H56")
)
_TAX_ID = re.compile(r"\d{10}(?:-?\d{3})?|\d{12}")

# -- the table ------------------------------------------------------------------------------
# Upper-case names are quoted by SQLAlchemy on every dialect, so PostgreSQL keeps them as-is.
# NGAY_CAP_NHAT orders versions and pages, so it keeps microseconds everywhere (MariaDB's
# plain DATETIME would round them away).
_PRECISE_DATETIME = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
metadata = MetaData()
tb_hoso = Table(
    TABLE,
    metadata,
    Column("ID", Integer, primary_key=True, autoincrement=False),
    Column("MA_HS", String(64), nullable=False),
    Column("MA_HS_QG", String(64)),
    Column("MA_TTHC", String(64), nullable=False),
    Column("TEN_TTHC", String(500), nullable=False),
    Column("LINH_VUC", String(255)),
    Column("MA_CQ", String(32), nullable=False),
    Column("MA_DVHC", String(8)),
    Column("NGAY_NOP", DateTime),
    Column("NGAY_NHAN", DateTime),  # nullable: a legacy import left some empty
    Column("NGAY_HEN_TRA", DateTime),
    Column("NGAY_TRA", DateTime),
    Column("KENH_NOP", String(16), nullable=False),
    Column("MUC_DO", String(16)),
    Column("TRANG_THAI", SmallInteger, nullable=False),
    Column("LOAI_DT", SmallInteger),
    Column("MST", String(20)),
    Column("LE_PHI", Numeric(12, 0), nullable=False),
    Column("NOP_PHI_TT", SmallInteger, nullable=False),
    Column("SO_TP", SmallInteger),
    Column("SO_TP_SO_HOA", SmallInteger),
    Column("KQ_SO_HOA", SmallInteger),
    Column("NGAY_CAP_NHAT", _PRECISE_DATETIME, nullable=False),
    Index("ix_tb_hoso_ngay_cap_nhat_id", "NGAY_CAP_NHAT", "ID"),
    Index("ix_tb_hoso_ngay_nhan", "NGAY_NHAN"),
)
COLUMNS: tuple[str, ...] = tuple(column.name for column in tb_hoso.columns)
_AT = {name: index for index, name in enumerate(COLUMNS)}


# -- planted defects ------------------------------------------------------------------------
_set = partial(database.assign, _AT)


def _shift(name: str, days: int, **values: Any) -> Callable[[list[Any]], None]:
    def plant(row: list[Any]) -> None:
        row[_AT[name]] = row[_AT["NGAY_NHAN"]] + timedelta(days=days)
        _set(**values)(row)

    return plant


def _cut_tax_code(row: list[Any]) -> None:
    row[_AT["MST"]] = row[_AT["MST"]].replace("-", "")[:9]


def _district(row: list[Any]) -> None:
    row[_AT["MA_DVHC"]] = DISTRICTS[row[_AT["ID"]] % len(DISTRICTS)]


def _before_received(c: Any, name: str) -> ColumnElement[bool]:
    return and_(c[name].is_not(None), c.NGAY_NHAN.is_not(None), c[name] < c.NGAY_NHAN)


_DEFECTS = (
    RowDefect("received_missing", _set(NGAY_NHAN=None), lambda c: c.NGAY_NHAN.is_(None)),
    RowDefect(
        "returned_before_received",
        _shift("NGAY_TRA", -2, TRANG_THAI=RETURNED),
        lambda c: _before_received(c, "NGAY_TRA"),
    ),
    RowDefect(
        "due_before_received",
        _shift("NGAY_HEN_TRA", -1),
        lambda c: _before_received(c, "NGAY_HEN_TRA"),
    ),
    RowDefect("unknown_status", _set(TRANG_THAI=42), lambda c: c.TRANG_THAI.not_in(STATUSES)),
    RowDefect(
        "malformed_procedure_code",
        _set(MA_TTHC="2.00O477"),  # letter O for a zero, as typed by hand
        lambda c: c.MA_TTHC == "2.00O477",
    ),
    RowDefect("malformed_agency_code", _set(MA_CQ="H56"), lambda c: c.MA_CQ == "H56"),
    RowDefect("unknown_channel", _set(KENH_NOP="X"), lambda c: c.KENH_NOP.not_in(CHANNELS)),
    RowDefect(
        "malformed_tax_code",
        _cut_tax_code,
        lambda c: and_(c.MST.is_not(None), func.length(c.MST) == 9),
    ),
    RowDefect("blank_dossier_code", _set(MA_HS="  "), lambda c: func.trim(c.MA_HS) == ""),
    RowDefect(
        "unknown_applicant_type",
        _set(LOAI_DT=7),
        lambda c: and_(c.LOAI_DT.is_not(None), c.LOAI_DT.not_in(APPLICANT_TYPES)),
    ),
    RowDefect(
        "district_after_reform",  # a district code on a dossier received after 2025-07-01
        _district,
        lambda c: and_(
            c.MA_DVHC.is_not(None),
            c.NGAY_NHAN.is_not(None),
            func.length(c.MA_DVHC) == 3,
            c.NGAY_NHAN >= TWO_LEVEL_FROM,
        ),
    ),
)
DEFECT_KINDS: tuple[str, ...] = tuple(defect.kind for defect in _DEFECTS)
_DISTRICT_DEFECT = _DEFECTS[-1]
_VALID = database.valid(tb_hoso, _DEFECTS)


# -- public API -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Truth(common.Truth[int]):
    """What `generate` loaded; `online` counts valid rows with KENH_NOP = TRUC_TUYEN."""

    source: ClassVar[str] = "tax"


def create_schema(engine: Engine) -> None:
    """Drop and create `tb_hoso` with its indexes."""
    with engine.begin() as conn:
        database.create(conn, (tb_hoso,), indexes=True)


def generate(
    url: str,
    *,
    rows: int,
    seed: int,
    malformed_share: float = 0.0,
    shared_updated_at: int = 0,
) -> Truth:
    """Rebuild `tb_hoso` at `url` with `rows` dossiers drawn from `seed`.

    `malformed_share` of the rows (rounded) carry one defect each, the kinds dealt round-robin
    over `DEFECT_KINDS`. The first `shared_updated_at` rows by ID share one NGAY_CAP_NHAT, so
    paging has ties to cross. Rows are streamed: memory stays flat whatever `rows` is.
    """
    malformed = common.malformed_count(rows, malformed_share, shared_updated_at)
    picker = random.Random(f"tax-defects-{seed}")
    _, plan = common.deal(picker, rows, forwarded=0, malformed=malformed, defects=_DEFECTS)
    stats = _Stats()
    stream = _generate_rows(rows, seed, plan, shared_updated_at, stats)
    database.fill(url, (tb_hoso,), ([batch] for batch in chunks(stream, database.CHUNK)))
    return Truth.of_plan(plan, rows=rows, kinds=DEFECT_KINDS, online=stats.online, ident=int)


def touch(url: str, *, share: float, seed: int) -> list[int]:
    """Move `share` of the valid rows (rounded) one step on in their life; return their IDs.

    The rows are drawn from `seed` among valid dossiers that can still move (waiting, accepted,
    in progress, awaiting a supplement or payment, resolved): each takes its next status
    (resolving sets NGAY_TRA) and a NGAY_CAP_NHAT later than every other row, increasing with
    ID. Malformed rows are never touched. Raises `ValueError` when too few rows can move.
    """
    common.check_share("share", share)
    c = tb_hoso.c
    with database.opened(url) as engine, engine.begin() as conn:
        total = conn.execute(select(func.count()).where(_VALID)).scalar_one()
        movable = conn.execute(
            select(c.ID, c.TRANG_THAI).where(_VALID, c.TRANG_THAI.in_(NEXT_STATUS)).order_by(c.ID)
        ).all()
        picked = common.draw(
            movable,
            valid=total,
            share=share,
            rng=random.Random(f"tax-touch-{seed}"),
            order=lambda row: row.ID,
            able="are still open or resolved",
        )
        latest = _latest(conn)
        moved, resolved = [], []
        for step, (ident, status) in enumerate(picked, start=1):
            when = latest + timedelta(milliseconds=step)
            params = {"b_id": ident, "b_status": NEXT_STATUS[status], "b_when": when}
            if params["b_status"] == RESOLVED:
                # Whole seconds like every other NGAY_*; still >= NGAY_NHAN, which is a
                # whole second no later than the previous latest change.
                resolved.append({**params, "b_tra": when.replace(microsecond=0)})
            else:
                moved.append(params)
        change = update(tb_hoso).where(_by_id("b_id"))
        values: dict[str, Any] = {
            "TRANG_THAI": bindparam("b_status"),
            "NGAY_CAP_NHAT": bindparam("b_when"),
        }
        for batch in chunks(moved, database.CHUNK):
            conn.execute(change.values(values), batch)
        for batch in chunks(resolved, database.CHUNK):
            conn.execute(change.values({**values, "NGAY_TRA": bindparam("b_tra")}), batch)
    return [ident for ident, _ in picked]


def repair(url: str, *, ids: Sequence[int]) -> None:
    """Fix rows at the source, as an operator would: every column valid, NGAY_CAP_NHAT newest.

    Valid columns are left as they are; each repaired row gets a NGAY_CAP_NHAT later than
    every other row. Raises `ValueError` naming IDs that are not in the table.
    """
    wanted = sorted(set(ids))
    with database.opened(url) as engine, engine.begin() as conn:
        found = database.fetch(conn, tb_hoso, wanted)
        latest = _latest(conn)
        fixed = [
            _repaired(found[ident], latest + timedelta(milliseconds=step))
            for step, ident in enumerate(wanted, start=1)
        ]
        database.recode(conn, fixed, tb_hoso.c.MA_HS, agency="MA_CQ", received="NGAY_NHAN")
        database.rewrite(conn, tb_hoso, fixed)


def status_of(url: str, ids: Sequence[int]) -> dict[int, int]:
    """TRANG_THAI of the given rows, by ID (absent IDs are left out)."""
    return database.column_of(url, tb_hoso.c.TRANG_THAI, ids)


# -- generation -----------------------------------------------------------------------------
@dataclass
class _Stats:
    online: int = 0


def _generate_rows(
    rows: int, seed: int, plan: dict[int, RowDefect], shared: int, stats: _Stats
) -> Iterator[list[Any]]:
    # The row stream uses its own generator, so the same seed gives the same dossiers
    # whatever share of them is then spoiled.
    rng = random.Random(f"tax-rows-{seed}")
    r = rng.random
    procedures = [p for p in PROCEDURES for _ in range(p.weight)]
    nfd_names = {p.name: unicodedata.normalize("NFD", p.name) for p in PROCEDURES}
    open_statuses = [WAITING] * 2 + [ACCEPTED] * 3 + [IN_PROGRESS] * 9
    open_statuses += [SUPPLEMENT] * 3 + [AWAITING_PAYMENT] * 3
    n_days = (END - START).days
    day_starts = [START + timedelta(days=d) for d in range(n_days)]
    day_codes = [day.strftime("%y%m%d") for day in day_starts]
    reform_day = (TWO_LEVEL_FROM - START).days
    sequence: dict[tuple[str, int], int] = {}  # daily receipt counter per agency
    national: dict[int, int] = {}  # daily counter of the national portal
    held: list[list[Any]] = []
    i_cap = _AT["NGAY_CAP_NHAT"]

    for ident in range(1, rows + 1):
        defect = plan.get(ident)
        proc = procedures[int(r() * len(procedures))]
        if proc.level == OFFLINE:
            channel = IN_PERSON if r() < 0.85 else POSTAL
        else:
            # 92% of the volume is online-capable; 87% of that comes online: ~80% overall.
            u = r()
            channel = ONLINE if u < 0.87 else IN_PERSON if u < 0.97 else POSTAL

        u = r()
        if defect is _DISTRICT_DEFECT:  # needs a dossier received under the two-level table
            day = reform_day + int(u * (n_days - reform_day))
        else:
            day = int(u * n_days)
        submitted, received = common.arrival(
            r,
            day_starts[day],
            online=channel == ONLINE,
            postal=channel == POSTAL,
            online_wait=57600,
        )
        rday = (received - START).days

        locality, agency = common.place(
            r,
            two_level=rday >= reform_day,
            province=PROVINCE_AGENCY,
            offices=TEAM_AGENCIES,
            province_share=0.4,
            districts_below=0.7,
        )

        key = (agency, rday)
        seq = sequence[key] = sequence.get(key, 0) + 1
        dossier_code = f"{agency}-{day_codes[rday]}-{seq:04d}"
        national_code = None
        if channel == ONLINE and r() < 0.6:
            n = national[rday] = national.get(rday, 0) + 1
            national_code = f"G22.56-{day_codes[rday]}-{n:06d}"

        due = day_starts[rday] + timedelta(days=proc.days, hours=16, minutes=30)
        # Most dossiers finish within the statutory time; about one in ten is late.
        finish = received + timedelta(seconds=int(proc.days * 86400 * (0.1 + r())))
        u = r()
        finished = None
        if u < 0.04:
            status = REFUSED
        elif u < 0.06:
            status = WITHDRAWN
        elif u < 0.07:
            status = STOPPED
        elif u < 0.25 or finish >= END:
            status = open_statuses[int(r() * len(open_statuses))]
        else:
            status = RESOLVED if u < 0.35 else RETURNED
            finished = finish

        u = r()
        if u < 0.45:
            applicant = 1
            if r() < 0.7:  # citizen ID: province of birth, century/sex, year, serial
                tax_code = f"0{PROVINCE}{int(r() * 10**9):09d}"
            else:
                tax_code = f"8{int(r() * 10**9):09d}"  # personal tax code
        else:
            applicant = 2 if u < 0.95 else 3 if u < 0.97 else 4
            tax_code = f"42{int(r() * 10**8):08d}"
            if applicant == 2 and r() < 0.25:
                tax_code = f"{tax_code}-{1 + int(r() * 30):03d}"  # a branch

        fee = proc.fee
        paid = 1 if fee and r() < (0.75 if channel == ONLINE else 0.1) else 0
        docs = 1 + int(r() * 6)
        digitised = docs if channel == ONLINE else int(r() * (docs + 1))
        result_digitised = 1 if finished is not None and r() < 0.8 else 0

        last = finished or received
        room = min((END - last).total_seconds(), 259200.0) * 1e6
        changed = last + timedelta(microseconds=int(r() * room))

        row = [
            ident,
            dossier_code,
            national_code,
            f"{proc.code}.000.00.00.H56" if r() < 0.3 else proc.code,
            nfd_names[proc.name] if r() < 0.03 else proc.name,
            proc.sector,
            agency,
            locality,
            submitted,
            received,
            due,
            finished,
            channel,
            proc.level,
            status,
            applicant,
            tax_code,
            fee,
            paid,
            docs,
            digitised,
            result_digitised,
            changed,
        ]
        if defect is not None:
            defect.plant(row)
        elif channel == ONLINE:
            stats.online += 1
        if ident <= shared:
            held.append(row)
            if ident < shared:
                continue
            # One last-change time for the whole group: the latest of theirs, so it is
            # still no earlier than any of their own dates.
            tie = max(held_row[i_cap] for held_row in held)
            for held_row in held:
                held_row[i_cap] = tie
            yield from held
            held = []
            continue
        yield row


# -- repair ---------------------------------------------------------------------------------
def _repaired(row: dict[str, Any], when: datetime) -> dict[str, Any]:
    """The row with every column valid; a blank or malformed MA_HS is left to the caller."""
    fixed = dict(row)
    name = unicodedata.normalize("NFC", fixed["TEN_TTHC"] or "")
    procedure = _PROCEDURE_BY_NAME.get(name, PROCEDURES[0])
    if fixed["MA_TTHC"] not in _PROCEDURE_CODES:
        fixed["MA_TTHC"] = procedure.code
    if not fixed["TEN_TTHC"]:
        fixed["TEN_TTHC"] = procedure.name
    if fixed["MUC_DO"] not in SERVICE_LEVELS:
        fixed["MUC_DO"] = procedure.level

    received = database.repair_receipt(
        fixed,
        when,
        days=procedure.days,
        submitted="NGAY_NOP",
        received="NGAY_NHAN",
        due="NGAY_HEN_TRA",
    )
    if fixed["TRANG_THAI"] not in STATUSES:
        fixed["TRANG_THAI"] = RETURNED if fixed["NGAY_TRA"] is not None else IN_PROGRESS
    if fixed["TRANG_THAI"] in (RESOLVED, RETURNED):
        if fixed["NGAY_TRA"] is None or fixed["NGAY_TRA"] < received:
            fixed["NGAY_TRA"] = min(received + timedelta(days=1), when.replace(microsecond=0))
    else:
        fixed["NGAY_TRA"] = None

    if fixed["MA_CQ"] not in AGENCIES:
        prefix = str(fixed["MA_HS"]).strip().rsplit("-", 2)[0]
        fixed["MA_CQ"] = prefix if prefix in AGENCIES else PROVINCE_AGENCY
    locality = fixed["MA_DVHC"]
    two_level = received >= TWO_LEVEL_FROM
    if (
        not isinstance(locality, str)
        or not locality.isdigit()
        or len(locality) not in (2, 3, 5)
        or (two_level and len(locality) == 3)
    ):
        fixed["MA_DVHC"] = COMMUNES_TWO_LEVEL[0] if two_level else COMMUNES_THREE_LEVEL[0]
    if fixed["KENH_NOP"] not in CHANNELS:
        fixed["KENH_NOP"] = ONLINE

    tax_code = fixed["MST"]
    if tax_code is not None and not _TAX_ID.fullmatch(tax_code):
        # The operator looks the applicant up again; here an ID-derived code stands in.
        ident = fixed["ID"]
        if fixed["LOAI_DT"] == 1:
            fixed["MST"] = f"0{PROVINCE}{ident % 10**9:09d}"
        else:
            fixed["MST"] = f"42{ident % 10**8:08d}"
    if fixed["LOAI_DT"] not in APPLICANT_TYPES:
        digits = "".join(ch for ch in fixed["MST"] or "" if ch.isdigit())
        fixed["LOAI_DT"] = 1 if len(digits) == 12 else 2

    if Decimal(fixed["LE_PHI"] or 0) <= 0:
        fixed["LE_PHI"], fixed["NOP_PHI_TT"] = 0, 0
    docs, digitised = fixed["SO_TP"], fixed["SO_TP_SO_HOA"]
    if docs is not None and digitised is not None and digitised > docs:
        fixed["SO_TP_SO_HOA"] = docs
    fixed["NGAY_CAP_NHAT"] = when
    return fixed


# -- helpers --------------------------------------------------------------------------------
def _by_id(name: str) -> ColumnElement[bool]:
    # executemany binds each row's ID under `name` (a column's own name is reserved for SET).
    return tb_hoso.c["ID"] == bindparam(name)


def _latest(conn: Connection) -> datetime:
    latest = conn.execute(select(func.max(tb_hoso.c.NGAY_CAP_NHAT))).scalar_one()
    # An empty table has no latest change; anything from END on is later than generated data.
    return latest if latest is not None else END
