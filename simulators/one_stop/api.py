"""The portal's REST API (API key, numbered pages) over generated records, and `serve` to run
it as a process."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from simulators.common import DossierApi
from simulators.http_server import Faults, RecordSet, Request, Response
from simulators.one_stop.generation import Truth, generate
from simulators.one_stop.schema import (
    API_KEY_HEADER,
    COUNT_PATH,
    DAY,
    DEFAULT_FORWARDED,
    DEMO_API_KEY,
    DOSSIERS_PATH,
    END,
    MAX_PAGE_SIZE,
    NEXT_STATUS,
    RESOLVED,
    RETURNED,
    parse_stamp,
    stamp,
)


def _sort_key(record: dict[str, Any]) -> tuple[datetime, str]:
    return parse_stamp(record["NgayCapNhat"]), str(record["Id"])


def _refusal(status: int, message: str) -> Response:
    return Response(status, {"MaLoi": status, "ThongBao": message})


class OneStopApi(DossierApi):
    """The portal's REST API over generated dossiers, with an API key and faults."""

    name = "one_stop"
    truth: Truth

    def __init__(
        self,
        *,
        rows: int,
        seed: int,
        malformed_share: float = 0.0,
        forwarded: int | Mapping[str, int] = 0,
        shared_updated_at: int = 0,
        api_key: str = DEMO_API_KEY,
        faults: Faults | None = None,
        port: int = 0,
    ) -> None:
        records, self.truth = generate(
            rows=rows,
            seed=seed,
            malformed_share=malformed_share,
            forwarded=forwarded,
            shared_updated_at=shared_updated_at,
        )
        super().__init__(records, key="Id", sort_key=_sort_key, faults=faults, port=port)
        self._api_key = api_key

    def replace(self, records: list[dict[str, Any]]) -> None:
        """Serve exactly these native records from now on (a hand-written scenario)."""
        with self._data:
            copies = [dict(record) for record in records]
            self._records = RecordSet(copies, _sort_key)
            self._by_id = {record["Id"]: record for record in copies}

    # -- changing the data, as the live system does ----------------------------------------
    def touch(self, *, share: float, seed: int, among: set[str] | None = None) -> list[str]:
        """Move `share` of the valid records (rounded) one step on; return their Ids, sorted.

        The records are drawn from `seed` among valid dossiers that can still move (open or
        resolved), or only among the Ids in `among`: each takes its next status (setting
        NgayKetThuc or NgayTraKetQua) and one NgayCapNhat, a second after every other
        record's. Raises `ValueError` when too few records can move.
        """
        with self._data:
            picked = self._draw(
                share=share,
                seed=f"one-stop-touch-{seed}",
                can_move=lambda record: (
                    record["TrangThaiHoSo"] in NEXT_STATUS
                    and (among is None or record["Id"] in among)
                ),
            )
            latest = self._records.latest() or END
            self._move_on(
                picked,
                stamp(latest + timedelta(seconds=1)),
                status="TrangThaiHoSo",
                next_status=NEXT_STATUS,
                stamps={RESOLVED: "NgayKetThuc", RETURNED: "NgayTraKetQua"},
                changed="NgayCapNhat",
            )
        return picked

    # -- HTTP -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path not in (DOSSIERS_PATH, COUNT_PATH):
            return _refusal(404, f"Không tìm thấy {request.path}")
        if request.method != "GET":
            return _refusal(405, "Chỉ hỗ trợ GET")
        key = request.header(API_KEY_HEADER) or ""
        if not hmac.compare_digest(key.encode(), self._api_key.encode()):
            return _refusal(401, "API key không hợp lệ")
        if request.path == COUNT_PATH:
            return self._count(request)
        return self._page(request)

    def _page(self, request: Request) -> Response:
        query = request.query
        try:
            page = int(query.get("SoTrang", "1"))
            size = int(query.get("SoBanGhi", "50"))
        except ValueError:
            return _refusal(400, "SoTrang và SoBanGhi phải là số nguyên")
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return _refusal(400, f"SoTrang >= 1, SoBanGhi trong 1..{MAX_PAGE_SIZE}")
        since: datetime | None = None
        if text := query.get("NgayCapNhatTu"):
            try:
                since = parse_stamp(text)
            except ValueError:
                return _refusal(400, "NgayCapNhatTu phải có dạng yyyyMMddHHmmss")
        with self._data:
            rows = self._records.window(since, (page - 1) * size, size)
            matching = len(self._records) - self._records.first_since(since)
        return Response(
            200, {"TongSo": matching, "SoTrang": page, "SoBanGhi": size, "DuLieu": rows}
        )

    def _count(self, request: Request) -> Response:
        query = request.query
        if "TuNgay" not in query and "DenNgay" not in query:
            with self._data:
                return Response(200, {"TongSo": len(self._records)})
        try:
            start = datetime.strptime(query["TuNgay"], DAY).date()
            end = datetime.strptime(query["DenNgay"], DAY).date()
        except (KeyError, ValueError):
            return _refusal(400, "TuNgay và DenNgay phải cùng có, dạng yyyyMMdd")
        total = self._received(start, end, lambda record: _day(record["NgayTiepNhan"]))
        return Response(200, {"TongSo": total})


def _day(text: Any) -> date | None:
    try:
        return parse_stamp(text).date()
    except (TypeError, ValueError):
        return None


def serve(
    port: int,
    *,
    rows: int = 10_000,
    seed: int = 1,
    malformed_share: float = 0.02,
    forwarded: int | Mapping[str, int] | None = None,
    api_key: str = DEMO_API_KEY,
    faults: Faults | None = None,
) -> None:
    """Serve the portal API on 127.0.0.1:`port` until Ctrl-C.

    `forwarded` defaults to `DEFAULT_FORWARDED`. Prints the truth as one JSON line on
    stdout, and where it listens on stderr (never the API key).
    """
    api = OneStopApi(
        rows=rows,
        seed=seed,
        malformed_share=malformed_share,
        forwarded=DEFAULT_FORWARDED if forwarded is None else forwarded,
        api_key=api_key,
        faults=faults,
        port=port,
    )
    api.serve_until_interrupted(f"API key in the {API_KEY_HEADER} header")
