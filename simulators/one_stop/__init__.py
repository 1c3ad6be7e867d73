"""The provincial one-stop portal (Cổng dịch vụ công / Hệ thống một cửa điện tử): its REST API.

The portal records every dossier received at the province's one-stop centres (Bộ phận một
cửa) — the provincial public administration centre, district centres until 2025-07-01 and
commune centres — and the dossiers those centres forward to a sector agency. Today's
statistics come from it alone. Its native shape, which nothing here translates (that is
`connectors/one_stop.py`'s job):

* PascalCase Vietnamese field names (MaHoSo, MaTTHC, TenTTHC, MaCoQuan, MaDonVi,
  KenhThucHien, MucDo, NgayTiepNhan, NgayHenTra, NgayKetThuc, TrangThaiHoSo, NgayCapNhat);
* `yyyyMMddHHmmss` naive local times, and "" for a time not (yet) set;
* the shared channel codes (KenhThucHien 1 in person, 2 online, 3 postal), the legacy service
  levels (MucDo 2, 3, 4) and the ten shared status codes as strings ("1".."10");
* mostly in-person intake (`scenario.ONLINE_SHARE`), and the applicant's citizen ID or tax
  code (SoGiayToChuHoSo, personal data);
* for a forwarded dossier, the sector agency it went to (MaCoQuanChuyenDen) and the sector
  (NganhChuyenDen); MaHoSo, the receipt code the centre printed, is the code the national
  portal and the sector system know it by. Every dossier also has the portal's own key, Id.

The API (API key in the `X-API-Key` header):

* `GET /api/v1/hoso?NgayCapNhatTu=&SoTrang=&SoBanGhi=` — dossiers changed at or after
  NgayCapNhatTu, ordered by (NgayCapNhat, Id), one page by number (from 1);
  `{"TongSo": n, "SoTrang": p, "SoBanGhi": s, "DuLieu": [...]}`. Pages are positions in the
  current data, so a change during a read shifts them (the connector copes);
* `GET /api/v1/hoso/dem?TuNgay=yyyyMMdd&DenNgay=yyyyMMdd` — dossiers received on local days
  TuNgay <= day < DenNgay (all without the parameters), `{"TongSo": n}`.

The package's modules: `schema` (endpoints, vocabulary, procedures), `defects` (the
malformed records it plants), `generation` (`generate`) and `api` (the service and `serve`).
"""

from __future__ import annotations

from simulators.one_stop.api import OneStopApi, serve
from simulators.one_stop.defects import DEFECT_KINDS
from simulators.one_stop.generation import Truth, generate
from simulators.one_stop.schema import (
    ACCEPTED,
    API_KEY_HEADER,
    AWAITING_PAYMENT,
    COUNT_PATH,
    DAY,
    DEFAULT_FORWARDED,
    DEMO_API_KEY,
    DOSSIERS_PATH,
    END,
    IN_PERSON,
    IN_PROGRESS,
    LAST,
    LEVEL_FULL,
    LEVEL_NONE,
    LEVEL_PARTIAL,
    MAX_PAGE_SIZE,
    NEXT_STATUS,
    NOT_ACCEPTED,
    ONLINE,
    POSTAL,
    PROCEDURES,
    REGISTERED,
    RESOLVED,
    RETURNED,
    SECTOR_AGENCIES,
    SECTOR_NAMES,
    START,
    STOPPED,
    SUPPLEMENT,
    TIME,
    TWO_LEVEL_FROM,
    WITHDRAWN,
    Procedure,
    parse_stamp,
    stamp,
)

__all__ = [
    "ACCEPTED",
    "API_KEY_HEADER",
    "AWAITING_PAYMENT",
    "COUNT_PATH",
    "DAY",
    "DEFAULT_FORWARDED",
    "DEFECT_KINDS",
    "DEMO_API_KEY",
    "DOSSIERS_PATH",
    "END",
    "IN_PERSON",
    "IN_PROGRESS",
    "LAST",
    "LEVEL_FULL",
    "LEVEL_NONE",
    "LEVEL_PARTIAL",
    "MAX_PAGE_SIZE",
    "NEXT_STATUS",
    "NOT_ACCEPTED",
    "ONLINE",
    "POSTAL",
    "PROCEDURES",
    "REGISTERED",
    "RESOLVED",
    "RETURNED",
    "SECTOR_AGENCIES",
    "SECTOR_NAMES",
    "START",
    "STOPPED",
    "SUPPLEMENT",
    "TIME",
    "TWO_LEVEL_FROM",
    "WITHDRAWN",
    "OneStopApi",
    "Procedure",
    "Truth",
    "generate",
    "parse_stamp",
    "serve",
    "stamp",
]
