"""Social Insurance (BHXH): the provincial social insurance REST service, in its own shape.

Social Insurance handles its dossiers in the national BHXH software and exposes them through a
REST API. Its native shape, which nothing here translates (that is the job of
`connectors/social_insurance.py`):

* camelCase Vietnamese field names (soHoSo, maThuTuc, ngayTiepNhan, trangThai, maSoBhxh, ...);
* ISO 8601 local times with their offset, `2026-03-01T08:30:00+07:00`;
* its own dossier numbers `{office}/{year}/{sequence}`, e.g. `56001/2026/07906`;
* 3-digit procedure codes ("601") and 5-digit office codes ("56001") of its own, where the
  province uses national procedure codes (1.001234) and electronic agency ids (000.00.15.H56);
* its own status and channel words (dangXuLy, daTraKetQua; dienTu, trucTiep, buuChinh);
* mostly online intake (`scenario.ONLINE_SHARE`), and for citizens the applicant's 10-digit
  social insurance number (personal data).

The API:

* `POST /oauth2/token` — OAuth2 client credentials (form body or HTTP Basic); tokens expire
  after `token_lifetime` seconds;
* `GET /api/v1/dossiers?updatedSince=&limit=&cursor=` — records changed at or after
  `updatedSince`, ordered by (ngayCapNhat, id), `{"data": [...], "nextCursor": ...}`; the
  cursor is an opaque keyset position, so changes during a read shift nothing;
* `GET /api/v1/dossiers/count?receivedFrom=&receivedTo=` — dossiers received on local days
  `receivedFrom <= day < receivedTo` (all without the parameters), `{"total": n}`;
* a rate limit (`requests_per_second`) answering 429 with `Retry-After`.

`generate` draws the dossiers from a seed; `SocialInsuranceApi` serves them (with the faults
of `simulators.http_server`) and changes them (`touch`); `serve` runs it as a process.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import random
import secrets
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, NamedTuple

from models.localtime import LOCAL
from simulators import common, scenario
from simulators.common import Defect, DossierApi, Record, assign
from simulators.http_server import Faults, Request, Response, error

TOKEN_PATH = "/oauth2/token"
DOSSIERS_PATH = "/api/v1/dossiers"
COUNT_PATH = "/api/v1/dossiers/count"
DEMO_CLIENT_ID = "dossierhub"
DEMO_CLIENT_SECRET = "bhxh-demo-secret-not-for-production"
MAX_LIMIT = 500  # largest page the API serves; a larger `limit` is refused, never cut
FORWARDED = 400  # dossiers the portal forwards to Social Insurance over the scenario's span

START = scenario.START
END = scenario.END  # exclusive: nothing is received or changed from here on
LAST = scenario.LAST
TWO_LEVEL_FROM = scenario.TWO_LEVEL_FROM

# -- Social Insurance's own vocabulary -------------------------------------------------------
WAITING = "choTiepNhan"  # chờ tiếp nhận
ACCEPTED = "daTiepNhan"  # đã tiếp nhận
REFUSED = "tuChoi"  # từ chối tiếp nhận
IN_PROGRESS = "dangXuLy"  # đang xử lý
SUPPLEMENT = "yeuCauBoSung"  # yêu cầu bổ sung
WITHDRAWN = "daRut"  # người nộp rút hồ sơ
STOPPED = "dungXuLy"  # dừng xử lý
RESOLVED = "daCoKetQua"  # đã có kết quả, chưa trả
RETURNED = "daTraKetQua"  # đã trả kết quả
STATUSES: tuple[str, ...] = (WAITING, ACCEPTED, REFUSED, IN_PROGRESS, SUPPLEMENT, WITHDRAWN)
STATUSES += (STOPPED, RESOLVED, RETURNED)
# The next step of a dossier still moving; `touch` applies it.
NEXT_STATUS = {
    WAITING: ACCEPTED,
    ACCEPTED: IN_PROGRESS,
    IN_PROGRESS: RESOLVED,
    SUPPLEMENT: IN_PROGRESS,
    RESOLVED: RETURNED,
}
ONLINE, IN_PERSON, POSTAL = "dienTu", "trucTiep", "buuChinh"
CHANNELS = (ONLINE, IN_PERSON, POSTAL)
FULL, PARTIAL, OFFLINE = "toanTrinh", "motPhan", "khongTrucTuyen"
CITIZEN, ENTERPRISE, STATE_BODY, OTHER = "caNhan", "doanhNghiep", "coQuanNhaNuoc", "toChucKhac"
# How a generated dossier ends up (the shares are Social Insurance's own).
_OUTCOMES = common.Outcomes(
    refused=REFUSED,
    withdrawn=WITHDRAWN,
    stopped=STOPPED,
    still_open=[WAITING] * 2 + [ACCEPTED] * 3 + [IN_PROGRESS] * 9 + [SUPPLEMENT] * 3,
    resolved=RESOLVED,
    returned=RETURNED,
    open_below=0.25,
    returned_from=0.35,
    return_within=2 * 86400,
    open_from=LAST,
)

PROVINCE = scenario.PROVINCE_LOCALITY
PROVINCE_OFFICE = "56001"  # BHXH tỉnh
DISTRICT_OFFICES = ("56101", "56102", "56103")  # BHXH cơ sở
OFFICES = (PROVINCE_OFFICE, *DISTRICT_OFFICES)
DISTRICTS = ("568", "569", "570")
COMMUNES_THREE_LEVEL = ("22333", "22366", "22390", "22411", "22435")
COMMUNES_TWO_LEVEL = ("22333", "22390", "22411", "22480", "22504")


class Procedure(NamedTuple):
    code: str  # Social Insurance's own 3-digit code
    national: str  # the national procedure code (mã TTHC) the connector maps it to
    name: str
    sector: str
    level: str
    days: int  # statutory processing time
    fee: int  # đồng; 0 = free
    weight: int  # relative volume


PROCEDURES = (
    Procedure("601", "1.001234", "Cấp lại sổ bảo hiểm xã hội", "Sổ, thẻ", FULL, 10, 0, 14),
    Procedure("602", "1.002345", "Giải quyết hưởng chế độ thai sản", "Chế độ", FULL, 6, 0, 16),
    Procedure("603", "1.000401", "Cấp lại thẻ bảo hiểm y tế", "Sổ, thẻ", FULL, 3, 0, 18),
    Procedure(
        "604", "1.003567", "Đăng ký đóng bảo hiểm xã hội tự nguyện", "Thu", PARTIAL, 5, 0, 10
    ),
    Procedure("605", "2.000765", "Giải quyết hưởng trợ cấp ốm đau", "Chế độ", PARTIAL, 6, 0, 12),
    Procedure("606", "1.004890", "Giải quyết hưởng lương hưu", "Chế độ", OFFLINE, 20, 0, 6),
    Procedure("607", "1.001991", "Cấp bản sao thẻ bảo hiểm y tế", "Sổ, thẻ", PARTIAL, 3, 20000, 6),
)
_BY_NATIONAL = {p.national: p for p in PROCEDURES}
if not all(code in _BY_NATIONAL for code, _ in scenario.PROCEDURES["social_insurance"]):
    raise RuntimeError("every scenario procedure of social_insurance needs a BHXH code here")


def timestamp(moment: datetime) -> str:
    """Social Insurance's time format: local ISO 8601 with its offset, whole seconds."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}+07:00"


# -- planted defects ------------------------------------------------------------------------
def _due_before_received(record: dict[str, Any]) -> None:
    received = datetime.fromisoformat(record["ngayTiepNhan"])
    record["ngayHenTra"] = timestamp(received.replace(tzinfo=None) - timedelta(days=1))


def _short_insurance_number(record: dict[str, Any]) -> None:
    record["loaiDoiTuong"] = CITIZEN
    record["maSoBhxh"] = (record["maSoBhxh"] or "0123456789")[:9]


def _too_many_digitised(record: dict[str, Any]) -> None:
    record["soGiayToSoHoa"] = record["soGiayTo"] + 2


_DEFECTS: tuple[Defect[Record], ...] = (
    Defect("received_missing", assign(ngayTiepNhan=None)),
    Defect("received_not_a_time", assign(ngayTiepNhan="2026-02-30T08:00:00+07:00")),
    Defect("unknown_procedure", assign(maThuTuc="699")),
    Defect("unknown_office", assign(maCoQuan="99999")),
    Defect("unknown_status", assign(trangThai="daHuy")),
    Defect("malformed_insurance_number", _short_insurance_number),
    Defect("due_before_received", _due_before_received),
    Defect("blank_dossier_number", assign(soHoSo="  ")),
    Defect("unknown_channel", assign(kenhNop="zalo")),
    Defect("digitised_exceeds_submitted", _too_many_digitised),
)
DEFECT_KINDS: tuple[str, ...] = tuple(defect.kind for defect in _DEFECTS)


# -- what was generated ---------------------------------------------------------------------
@dataclass(frozen=True)
class Truth(common.Truth[str]):
    """What `generate` made; `online` counts valid records with kenhNop = dienTu."""

    source: ClassVar[str] = "social_insurance"
    forwarded: int = 0  # records received at a one-stop centre (all valid)
    forwarded_ids: tuple[str, ...] = field(default=(), repr=False)
    defect_of: dict[str, str] = field(default_factory=dict, repr=False)  # id -> defect kind

    def own_counts(self) -> dict[str, Any]:
        return {"forwarded": self.forwarded}


def generate(
    *,
    rows: int,
    seed: int,
    malformed_share: float = 0.0,
    forwarded: int = 0,
    shared_updated_at: int = 0,
) -> tuple[list[dict[str, Any]], Truth]:
    """`rows` Social Insurance dossiers drawn from `seed`, and the truth about them.

    `forwarded` of them are the dossiers `scenario.forwarded(seed, sector="social_insurance",
    ...)` gives: received at a one-stop centre, they carry its code in maHoSoQuocGia and are
    never malformed. `malformed_share` of the rows (rounded) carry one defect each, the kinds
    dealt round-robin over `DEFECT_KINDS`. The first `shared_updated_at` records share one
    ngayCapNhat, so paging has ties to cross.
    """
    malformed = common.malformed_count(rows, malformed_share, shared_updated_at)
    if not 0 <= forwarded <= rows - malformed:
        raise ValueError(f"forwarded must be within 0..{rows - malformed}, got {forwarded}")
    picker = random.Random(f"social-insurance-plan-{seed}")
    forwarded_numbers, plan = common.deal(
        picker, rows, forwarded=forwarded, malformed=malformed, defects=_DEFECTS
    )
    incoming = dict(
        zip(
            forwarded_numbers,
            scenario.forwarded(seed, sector="social_insurance", count=forwarded),
            strict=True,
        )
    )
    records = _generate(rows, seed, incoming)
    common.tie(records[:shared_updated_at], "ngayCapNhat")
    online = common.spoil(records, plan, online=lambda record: record["kenhNop"] == ONLINE)
    truth = Truth.of_plan(
        plan,
        rows=rows,
        kinds=DEFECT_KINDS,
        online=online,
        ident=_id,
        forwarded=forwarded,
        forwarded_ids=tuple(_id(number) for number in forwarded_numbers),
        defect_of={_id(number): defect.kind for number, defect in plan.items()},
    )
    return records, truth


def _id(number: int) -> str:
    return f"BH{number:08d}"


def _generate(rows: int, seed: int, incoming: dict[int, scenario.Forwarded]) -> list[Record]:
    # The record stream has its own generator, so the same seed gives the same dossiers
    # whatever share of them is then spoiled.
    rng = random.Random(f"social-insurance-rows-{seed}")
    r = rng.random
    weighted = [p for p in PROCEDURES for _ in range(p.weight)]
    online_capable = [p for p in weighted if p.level != OFFLINE]
    nfd_names = {p.name: unicodedata.normalize("NFD", p.name) for p in PROCEDURES}
    online_share = scenario.ONLINE_SHARE["social_insurance"]
    n_days = (END - START).days
    sequence: dict[tuple[str, int], int] = {}  # yearly dossier counter per office
    records: list[Record] = []

    for number in range(1, rows + 1):
        centre = incoming.get(number)
        if centre is not None:
            # Received at a one-stop centre: its time, place, procedure and channel.
            proc = _BY_NATIONAL[centre.procedure_code]
            received = submitted = centre.received_at
            channel = ONLINE if centre.channel == 2 else IN_PERSON
            locality = centre.locality_code
            office = PROVINCE_OFFICE if len(locality) == 2 else DISTRICT_OFFICES[number % 3]
            received_by: str | None = centre.centre
            national: str | None = centre.national_code
        else:
            if r() < online_share:
                channel = ONLINE
                proc = online_capable[int(r() * len(online_capable))]
            else:
                channel = IN_PERSON if r() < 0.95 else POSTAL
                proc = weighted[int(r() * len(weighted))]
            day = START + timedelta(days=int(r() * n_days))
            submitted, received = common.arrival(
                r, day, online=channel == ONLINE, postal=channel == POSTAL, online_wait=28800
            )
            places: tuple[str, ...]
            if received >= TWO_LEVEL_FROM:
                places = (PROVINCE, *COMMUNES_TWO_LEVEL)
            else:
                places = (PROVINCE, *DISTRICTS, *COMMUNES_THREE_LEVEL)
            locality = places[int(r() * len(places))]
            office = PROVINCE_OFFICE if locality == PROVINCE else DISTRICT_OFFICES[number % 3]
            received_by = national = None

        key = (office, received.year)
        seq = sequence[key] = sequence.get(key, 0) + 1
        due = received.replace(hour=16, minute=30, second=0) + timedelta(days=proc.days)
        finish = received + timedelta(seconds=int(proc.days * 86400 * (0.1 + r())))
        status, finished, returned = _OUTCOMES.draw(r, finish)

        u = r()
        applicant = CITIZEN if u < 0.85 else ENTERPRISE if u < 0.97 else STATE_BODY
        if u >= 0.99:
            applicant = OTHER
        insurance_number = f"{int(r() * 10**10):010d}" if applicant == CITIZEN else None
        paid = bool(proc.fee) and r() < (0.8 if channel == ONLINE else 0.1)
        docs = 1 + int(r() * 5)
        digitised = docs if channel == ONLINE else int(r() * (docs + 1))
        last = returned or finished or received
        changed = min(last + timedelta(seconds=int(r() * 259200)), LAST)

        records.append(
            {
                "id": _id(number),
                "soHoSo": f"{office}/{received.year}/{seq:05d}",
                "maHoSoQuocGia": national,
                "maThuTuc": proc.code,
                "tenThuTuc": nfd_names[proc.name] if r() < 0.03 else proc.name,
                "linhVuc": proc.sector,
                "maCoQuan": office,
                "maDonViTiepNhan": received_by,
                "maDiaBan": locality,
                "kenhNop": channel,
                "mucDo": proc.level,
                "trangThai": status,
                "ngayNop": timestamp(submitted),
                "ngayTiepNhan": timestamp(received),
                "ngayHenTra": timestamp(due),
                "ngayCoKetQua": None if finished is None else timestamp(finished),
                "ngayTraKetQua": None if returned is None else timestamp(returned),
                "loaiDoiTuong": applicant,
                "maSoBhxh": insurance_number,
                "lePhi": proc.fee,
                "thanhToanTrucTuyen": paid,
                "soGiayTo": docs,
                "soGiayToSoHoa": digitised,
                "ketQuaDienTu": finished is not None and r() < 0.8,
                "ngayCapNhat": timestamp(changed),
            }
        )
    return records


# -- the service ----------------------------------------------------------------------------
def _sort_key(record: dict[str, Any]) -> tuple[datetime, str]:
    return datetime.fromisoformat(record["ngayCapNhat"]), str(record["id"])


class SocialInsuranceApi(DossierApi):
    """The Social Insurance REST service over generated dossiers, with OAuth2 and faults."""

    name = "social_insurance"
    truth: Truth

    def __init__(
        self,
        *,
        rows: int,
        seed: int,
        malformed_share: float = 0.0,
        forwarded: int = 0,
        shared_updated_at: int = 0,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
        token_lifetime: float = 300.0,
        requests_per_second: float | None = None,
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
        super().__init__(records, key="id", sort_key=_sort_key, faults=faults, port=port)
        self._client = (client_id, client_secret)
        self.token_lifetime = token_lifetime
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self.tokens_issued = 0
        # Answer 401 to every token, fresh or not (a client without the read permission).
        self.refuse_all_tokens = False
        self._rate = requests_per_second
        self._bucket = requests_per_second or 0.0
        self._bucket_at = time.monotonic()

    # -- changing the data, as the live system does ----------------------------------------
    def touch(self, *, share: float, seed: int) -> list[str]:
        """Move `share` of the valid records (rounded) one step on; return their ids, sorted.

        The records are drawn from `seed` among valid dossiers that can still move (waiting,
        accepted, in progress, awaiting a supplement, resolved): each takes its next status
        (setting ngayCoKetQua or ngayTraKetQua) and one ngayCapNhat, a second after every
        other record's. Raises `ValueError` when too few records can move.
        """
        with self._data:
            picked = self._draw(
                share=share,
                seed=f"social-insurance-touch-{seed}",
                can_move=lambda record: record["trangThai"] in NEXT_STATUS,
            )
            latest = self._records.latest() or END.replace(tzinfo=LOCAL)
            when = timestamp((latest + timedelta(seconds=1)).replace(tzinfo=None))
            for ident in picked:
                record = self._by_id[ident]
                record["trangThai"] = NEXT_STATUS[record["trangThai"]]
                if record["trangThai"] == RESOLVED:
                    record["ngayCoKetQua"] = when
                elif record["trangThai"] == RETURNED:
                    record["ngayTraKetQua"] = when
                record["ngayCapNhat"] = when
            self._records.refresh()
        return picked

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far, as a key rotation at the provider would."""
        with self._data:
            self._tokens.clear()

    # -- HTTP -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if (limited := self._rate_limited()) is not None:
            return limited
        if request.path == TOKEN_PATH:
            if request.method != "POST":
                return error(405, "use POST for the token endpoint")
            return self._issue_token(request)
        if request.path not in (DOSSIERS_PATH, COUNT_PATH):
            return error(404, f"no endpoint {request.path}")
        if request.method != "GET":
            return error(405, f"use GET for {request.path}")
        if (denied := self._authorize(request)) is not None:
            return denied
        if request.path == COUNT_PATH:
            return self._count(request)
        return self._page(request)

    def _rate_limited(self) -> Response | None:
        if self._rate is None:
            return None
        with self._data:
            now = time.monotonic()
            self._bucket = min(self._rate, self._bucket + (now - self._bucket_at) * self._rate)
            self._bucket_at = now
            if self._bucket >= 1.0:
                self._bucket -= 1.0
                return None
            wait = math.ceil((1.0 - self._bucket) / self._rate)
        response = error(429, "rate limit exceeded")
        response.headers["Retry-After"] = str(wait)
        return response

    def _issue_token(self, request: Request) -> Response:
        form = request.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.header("Authorization") or ""
        if basic.startswith("Basic "):
            try:
                decoded = base64.b64decode(basic[6:], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
        if form.get("grant_type") != "client_credentials":
            return error(400, "unsupported_grant_type")
        known_id, known_secret = self._client
        if not (
            client_id == known_id
            and client_secret is not None
            and hmac.compare_digest(client_secret.encode(), known_secret.encode())
        ):
            response = error(
                401, "invalid_client", error_description="client authentication failed"
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="bhxh"'
            return response
        token = secrets.token_urlsafe(24)
        with self._data:
            self._tokens[token] = time.monotonic() + self.token_lifetime
            self.tokens_issued += 1
        return Response(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime},
        )

    def _authorize(self, request: Request) -> Response | None:
        header = request.header("Authorization") or ""
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._data:
            expiry = self._tokens.get(token)
            if expiry is not None and expiry <= time.monotonic():
                del self._tokens[token]
                expiry = None
        if expiry is not None and not self.refuse_all_tokens:
            return None
        response = error(401, "invalid_token")
        response.headers["WWW-Authenticate"] = 'Bearer realm="bhxh", error="invalid_token"'
        return response

    def _page(self, request: Request) -> Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return error(400, "limit must be a whole number")
        if not 1 <= limit <= MAX_LIMIT:
            return error(400, f"limit must be within 1..{MAX_LIMIT}")
        since: datetime | None = None
        if text := request.query.get("updatedSince"):
            try:
                since = _aware(datetime.fromisoformat(text))
            except ValueError:
                return error(400, "updatedSince is not an ISO 8601 time")
        after: tuple[datetime, str] | None = None
        if token := request.query.get("cursor"):
            try:
                position = json.loads(base64.urlsafe_b64decode(token.encode()))
                after = (datetime.fromisoformat(position["t"]), str(position["i"]))
            except (ValueError, KeyError, TypeError, binascii.Error):
                return error(400, "cursor is not one this API gave out")
        with self._data:
            if after is not None:
                page = self._records.after(after, limit)
            else:
                page = self._records.window(since, 0, limit)
            more = bool(page) and self._records.more_after(_sort_key(page[-1]))
        next_cursor = None
        if more:
            moment, ident = _sort_key(page[-1])
            raw = json.dumps({"t": moment.isoformat(), "i": ident}).encode()
            next_cursor = base64.urlsafe_b64encode(raw).decode()
        return Response(200, {"data": page, "nextCursor": next_cursor})

    def _count(self, request: Request) -> Response:
        try:
            start = date.fromisoformat(request.query["receivedFrom"])
            end = date.fromisoformat(request.query["receivedTo"])
        except KeyError:
            if "receivedFrom" in request.query or "receivedTo" in request.query:
                return error(400, "give both receivedFrom and receivedTo, or neither")
            with self._data:
                return Response(200, {"total": len(self._records)})
        except ValueError:
            return error(400, "receivedFrom and receivedTo are dates like 2026-03-01")
        total = self._received(start, end, lambda record: _local_day(record["ngayTiepNhan"]))
        return Response(200, {"total": total})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL)


def _local_day(text: Any) -> date | None:
    """The local day of a time as Social Insurance writes it; None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        return _aware(datetime.fromisoformat(text)).astimezone(LOCAL).date()
    except ValueError:
        return None


def serve(
    port: int,
    *,
    rows: int = 10_000,
    seed: int = 1,
    malformed_share: float = 0.02,
    forwarded: int = FORWARDED,
    client_id: str = DEMO_CLIENT_ID,
    client_secret: str = DEMO_CLIENT_SECRET,
    token_lifetime: float = 300.0,
    requests_per_second: float | None = 50.0,
    faults: Faults | None = None,
) -> None:
    """Serve the Social Insurance API on 127.0.0.1:`port` until Ctrl-C.

    `forwarded` must match the count the portal simulator forwards to Social Insurance
    (`simulators.one_stop.DEFAULT_FORWARDED`), so the registry can link both records of a
    forwarded dossier. Prints the truth as one JSON line on stdout, and where it listens on
    stderr (never the client secret).
    """
    api = SocialInsuranceApi(
        rows=rows,
        seed=seed,
        malformed_share=malformed_share,
        forwarded=forwarded,
        client_id=client_id,
        client_secret=client_secret,
        token_lifetime=token_lifetime,
        requests_per_second=requests_per_second,
        faults=faults,
        port=port,
    )
    api.serve_until_interrupted(f"token endpoint {TOKEN_PATH}, client_id {client_id!r}")
