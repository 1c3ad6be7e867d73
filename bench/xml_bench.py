"""XML export reading: time and peak memory by file size, the current transport against a baseline.

    python bench/xml_bench.py [--sizes 32 200] [--baseline REV] [--old-timeout 180]

For each size it writes two Finance XML exports into a scratch folder:

* `records`: an ordinary export, records of ~1.4 KiB each, as many as fit the size;
* `comment`: two records and one comment filling the size (one token expat must scan whole).

Each file is read by the file-drop transport (`FileDropConnector.read`: copy and hash, envelope
pass, records pass) in a child process of its own, so the peak RSS printed is that read's. The
current code (`connectors/files/` of this tree) and the baseline (`connectors/files.py` at git
revision REV, by default the one before streaming guards were added) run on the same files in
the same run. A baseline read still running after `--old-timeout` seconds is stopped and
reported as such: its real time is longer.

The last line is machine-readable:
`xml_bench size_mib=... shape=... new_s=... new_rss_mb=... old_s=... old_rss_mb=... ratio=...`
per file, one such line each.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "3fc023e"  # main before the XML guards (quadratic on one huge token)
NAME = "HoSo_TaiChinh_20260105.xml"
# A Finance row as exported (see connectors/finance.py for the columns).
ROW = {
    "MaThuTuc": "1.005432",
    "TenThuTuc": "Đăng ký giá",
    "LinhVuc": "Quản lý giá",
    "DonViXuLy": "000.00.10.H56",
    "DonViTiepNhan": "000.00.10.H56",
    "MaDiaBan": "56",
    "NgayNop": "05/01/2026 07:50:00",
    "NgayNhan": "05/01/2026 08:00:00",
    "HanXuLy": "12/01/2026",
    "HinhThucNop": "Trực tuyến",
    "MucDo": "4",
    "TrangThai": "Đang xử lý",
    "LoaiDoiTuong": "2",
    "MaSoThue": "4201234567",
    "PhiLePhi": "45.000",
    "ThanhToanTrucTuyen": "Có",
    "SoGiayTo": "3",
    "SoGiayToSoHoa": "2",
    "KetQuaDienTu": "Không",
    "NgayCapNhat": "06/01/2026 09:00:00",
}
PADDING = "Ghi chú của cán bộ tiếp nhận. " * 30  # brings a record to ~1.4 KiB


def record(number: int) -> bytes:
    values = {"SoHoSo": f"000.00.10.H56-260105-{number:07d}", **ROW, "GhiChu": PADDING}
    return (
        "<HoSo>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in values.items()) + "</HoSo>\n"
    ).encode()


def write_export(path: Path, size: int, shape: str) -> int:
    """An export of about `size` bytes; returns its record count."""
    head = b'<?xml version="1.0" encoding="UTF-8"?>\n<DanhSachHoSo NgayBaoCao="05/01/2026">\n'
    with path.open("wb") as out:
        out.write(head)
        written, count = len(head), 0
        if shape == "comment":
            out.write(record(1) + record(2))
            out.write(b"<!--")
            chunk = b"x" * (1 << 20)
            while written < size:
                out.write(chunk)
                written += len(chunk)
            out.write(b"-->\n")
            count = 2
        else:
            while written < size:
                count += 1
                line = record(count)
                out.write(line)
                written += len(line)
        out.write(f"<TongSo>{count}</TongSo>\n</DanhSachHoSo>\n".encode())
    return count


def transport(which: str, baseline: str, scratch: Path) -> Any:
    """The FileDropConnector class of this tree, or of `baseline`, as a module."""
    if which == "new":
        from connectors import files

        return files
    source = subprocess.run(
        ["git", "show", f"{baseline}:connectors/files.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    path = scratch / "baseline_files.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("baseline_files", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def child(which: str, baseline: str, folder: Path) -> None:
    """Read every export of `folder` once; print seconds, records and peak RSS as JSON."""
    from pydantic import SecretStr

    from connectors.base import ConnectorContext
    from connectors.finance import FinanceConnector
    from connectors.identifiers import IdentifierHasher

    with tempfile.TemporaryDirectory() as scratch:
        files = transport(which, baseline, Path(scratch))
        declared = {
            k: getattr(FinanceConnector, k)
            for k in (
                "mapping_file",
                "columns",
                "key_column",
                "version_column",
                "received_column",
                "time_formats",
                "csv_trailer",
                "xml_root",
                "xml_record",
                "xml_count",
                "personal_fields",
                "map_row",
            )
        }
        cls = type("BenchFinance", (files.FileDropConnector,), declared)
        context = ConnectorContext(
            source="finance",
            settings={"folder": str(folder)},
            hasher=IdentifierHasher(SecretStr("bench-key-" + "x" * 32)),
            batch_size=1000,
        )
        start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started, cpu = time.perf_counter(), time.process_time()
        records = refused = 0
        for batch in cls(context).read(None):
            for raw in batch.records:
                records += 1
                refused += raw.source_id.endswith("#file")
        print(
            json.dumps(
                {
                    "seconds": time.perf_counter() - started,
                    "cpu": time.process_time() - cpu,
                    "records": records,
                    "refused": refused,
                    "start_rss_mb": start_rss / 1024,
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            )
        )


def measure(which: str, baseline: str, folder: Path, timeout: float) -> dict[str, Any] | None:
    command = [sys.executable, __file__, "--child", which, "--baseline", baseline, str(folder)]
    try:
        done = subprocess.run(
            command, cwd=ROOT, check=True, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 200], help="MiB")
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the old transport")
    parser.add_argument("--old-timeout", type=float, default=180.0)
    parser.add_argument("--child", choices=["new", "old"])
    parser.add_argument("folder", nargs="?", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.baseline, args.folder)
        return

    lines = []
    with tempfile.TemporaryDirectory(prefix="xml-bench-") as scratch:
        for size in args.sizes:
            for shape in ("records", "comment"):
                folder = Path(scratch) / f"{shape}-{size}"
                folder.mkdir()
                count = write_export(folder / NAME, size << 20, shape)
                new = measure("new", args.baseline, folder, timeout=3600)
                old = measure("old", args.baseline, folder, timeout=args.old_timeout)
                assert new is not None
                print(
                    f"{size:>4} MiB {shape:<8} {count:>7} records | new: "
                    f"{new['seconds']:7.1f} s (cpu {new['cpu']:.1f} s), peak RSS "
                    f"{new['peak_rss_mb']:.0f} MiB (at start {new['start_rss_mb']:.0f}), "
                    f"{new['records']} read, {new['refused']} refused | old: "
                    + (
                        f"{old['seconds']:7.1f} s (cpu {old['cpu']:.1f} s), peak RSS "
                        f"{old['peak_rss_mb']:.0f} MiB, {old['records']} read, "
                        f"{old['refused']} refused | old/new {old['seconds'] / new['seconds']:.1f}"
                        if old
                        else f"stopped after {args.old_timeout:.0f} s (not finished)"
                    ),
                    flush=True,
                )
                old_s = f"{old['seconds']:.2f}" if old else f">{args.old_timeout:.0f}"
                old_rss = f"{old['peak_rss_mb']:.0f}" if old else "na"
                ratio = f"{old['seconds'] / new['seconds']:.1f}" if old else "na"
                lines.append(
                    f"xml_bench size_mib={size} shape={shape} new_s={new['seconds']:.2f} "
                    f"new_rss_mb={new['peak_rss_mb']:.0f} old_s={old_s} old_rss_mb={old_rss} "
                    f"ratio={ratio}"
                )
                (folder / NAME).unlink()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
