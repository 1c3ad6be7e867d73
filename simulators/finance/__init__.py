"""The Finance department's reference exports: daily files dropped in a folder, in its own shape.

Finance's software exports, each day, the register of the dossiers received that day: one file
per day, `HoSo_TaiChinh_yyyyMMdd.csv` on most days and `.xml` on every third (two exporters are
in use). Its native shape, which nothing here translates (that is `connectors/finance.py`'s job):

* Vietnamese column names (SoHoSo, MaThuTuc, NgayNhan, TrangThai, MaSoThue, PhiLePhi, ...);
* `dd/MM/yyyy HH:mm:ss` local times, a `dd/MM/yyyy` due date (HanXuLy);
* statuses, channels and yes/no as Vietnamese words (TrangThai "Đang xử lý", HinhThucNop
  "Trực tuyến", "Có"/"Không"), now and then decomposed (NFD) or upper case;
* legacy service levels 2/3/4 (MucDo), fees with dot thousands separators ("1.250.000");
* CSV in UTF-8 with a byte-order mark and CRLF line ends, closed by the trailer
  `#KETTHUC,<rows>`; XML `<DanhSachHoSo>` of `<HoSo>` records (empty values left out), closed by
  `<TongSo>` and the root's end tag. A file without its trailer or end tag is still being written.
* MaSoThue: the applicant's tax code or 12-digit citizen ID (personal data).

`generate` rebuilds the folder from a seed; `reissue`, `redeliver` and `start_partial` make the
deliveries a file-drop connector must cope with. A dossier's file never changes day; a re-issued
file carries every row again, the changed ones with a later NgayCapNhat.

The package's modules: `schema` (file names, columns and vocabulary), `defects` (the
malformed rows it plants), `files` (a day's CSV or XML bytes, read back and written
atomically), `generation` (`generate` and each day's rows) and `changes` (`reissue`,
`redeliver`, `start_partial`).
"""

from __future__ import annotations

from simulators.finance.changes import Partial, file_name, redeliver, reissue, start_partial
from simulators.finance.defects import DEFECT_KINDS, DEFECTS
from simulators.finance.files import Record
from simulators.finance.generation import Truth, generate
from simulators.finance.schema import (
    ACCEPTED,
    AWAITING_PAYMENT,
    COLUMNS,
    COMMUNE_OFFICES,
    CSV_TRAILER,
    DATE,
    DEPARTMENT,
    DISTRICT_OFFICES,
    END,
    FORWARDED,
    IN_PERSON,
    IN_PROGRESS,
    NEXT_STATUS,
    NO,
    ONLINE,
    PARAMETERS,
    POSTAL,
    PREFIX,
    PROCEDURES,
    REFUSED,
    RESOLVED,
    RETURNED,
    START,
    STATUSES,
    STOPPED,
    SUPPLEMENT,
    TIME,
    TWO_LEVEL_FROM,
    WAITING,
    WITHDRAWN,
    XML_COUNT,
    XML_RECORD,
    XML_ROOT,
    YES,
    Procedure,
)

__all__ = [
    "ACCEPTED",
    "AWAITING_PAYMENT",
    "COLUMNS",
    "COMMUNE_OFFICES",
    "CSV_TRAILER",
    "DATE",
    "DEFECTS",
    "DEFECT_KINDS",
    "DEPARTMENT",
    "DISTRICT_OFFICES",
    "END",
    "FORWARDED",
    "IN_PERSON",
    "IN_PROGRESS",
    "NEXT_STATUS",
    "NO",
    "ONLINE",
    "PARAMETERS",
    "POSTAL",
    "PREFIX",
    "PROCEDURES",
    "REFUSED",
    "RESOLVED",
    "RETURNED",
    "START",
    "STATUSES",
    "STOPPED",
    "SUPPLEMENT",
    "TIME",
    "TWO_LEVEL_FROM",
    "WAITING",
    "WITHDRAWN",
    "XML_COUNT",
    "XML_RECORD",
    "XML_ROOT",
    "YES",
    "Partial",
    "Procedure",
    "Record",
    "Truth",
    "file_name",
    "generate",
    "redeliver",
    "reissue",
    "start_partial",
]
