"""``touchstream export --format parquet DIR``: a consistent snapshot of every table, for the analyst's own tools.

The serving process writes the snapshot (``GET /export``: one transaction, a zip of
Parquet files and ``manifest.json``); this command downloads it streaming to a temp
file, checks every file against the manifest's sha256, size and row count, and only
then moves it into DIR, so DIR never holds a half-written or corrupted snapshot.
Reading it: docs/export.md (DuckDB, pandas, polars).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import httpx
import pyarrow.parquet as pq

from touchstream.cli import CliError, echo
from touchstream.cli.query import format_table
from touchstream.client import auth_headers
from touchstream.serving.export_api import sha256_file

FORMATS = ("parquet",)   # the flag is there so that other formats can follow
MANIFEST = "manifest.json"
TABLE_NAME = re.compile(r"[A-Za-z0-9_]+")   # a folder name in DIR, never a path
CHUNK = 1 << 20


def register(sub) -> None:
    p = sub.add_parser("export", help="download a consistent Parquet snapshot of every table, with a manifest")
    p.add_argument("dir", type=Path, help="where to unpack it (must be empty or new, unless --force)")
    p.add_argument("--format", default="parquet", help="file format (only parquet for now)")
    p.add_argument("--pii", action="store_true", help="include personal data (otherwise nulled)")
    p.add_argument("--tables", help="comma-separated table names (default: every exported table)")
    p.add_argument("--partition-rows", type=int, default=1_000_000, help="most rows per Parquet file")
    p.add_argument("--force", action="store_true", help="write into a non-empty DIR (replacing the tables exported)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the service to answer")
    p.set_defaults(func=run)


def download(http: httpx.Client, url: str, target: Path, *, pii: bool = False, tables: str | None = None,
             partition_rows: int = 1_000_000, headers: dict | None = None) -> int:
    """Stream ``GET {url}/export`` into ``target``; returns the bytes written. CliError with the service's message."""
    params = {"pii": str(pii).lower(), "partition_rows": partition_rows, **({"tables": tables} if tables else {})}
    try:
        with http.stream("GET", f"{url.rstrip('/')}/export", params=params, headers=headers or {}) as response:
            if response.status_code != 200:
                response.read()
                try:
                    detail = response.json().get("detail")
                except ValueError:
                    detail = response.text[:500]
                raise CliError(f"HTTP {response.status_code}: {detail}")
            size = 0
            with target.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    size += out.write(chunk)
    except httpx.HTTPError as exc:
        raise CliError(f"query service not reachable at {url} ({exc}); is `touchstream up` running?") from None
    return size


def _files(manifest: dict) -> list[dict]:
    return [f for table in manifest["tables"].values() for f in table["files"]]


def verify(folder: Path, manifest: dict) -> None:
    """Every file the manifest lists is in ``folder`` with its sha256, size and row count; CliError if not."""
    for name, table in manifest["tables"].items():
        if not TABLE_NAME.fullmatch(name) or any(PurePosixPath(f["path"]).parent.as_posix() != name
                                                 for f in table["files"]):
            raise CliError(f"manifest: table {name[:60]!r} or its file paths are not allowed")
        if sum(f["rows"] for f in table["files"]) != table["rows"]:
            raise CliError(f"manifest of {name}: its files' rows do not add up to {table['rows']}")
    for f in _files(manifest):
        path = folder / f["path"]
        if not path.is_file():
            raise CliError(f"{f['path']}: missing from the snapshot")
        if path.stat().st_size != f["bytes"] or sha256_file(path) != f["sha256"]:
            raise CliError(f"{f['path']}: sha256 or size differs from the manifest (corrupted download?)")
        if pq.ParquetFile(path).metadata.num_rows != f["rows"]:
            raise CliError(f"{f['path']}: holds a different number of rows than the manifest says")


def _safe(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in name and bool(path.parts)


def unpack(archive: Path, dest: Path, *, force: bool = False) -> dict:
    """Check the zip against its manifest, then move its tables into ``dest``; returns the manifest.

    Extracted and verified in a staging folder beside ``dest`` first: a failed check leaves
    ``dest`` as it was. With ``force``, the folders of the tables exported are replaced (so
    no stale part file of an earlier export mixes in); other content of ``dest`` stays.
    """
    _check_dest(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                manifest = json.loads(zf.read(MANIFEST))
            except (KeyError, ValueError) as exc:
                raise CliError(f"not a touchstream export: no readable {MANIFEST} ({exc})") from None
            if manifest.get("format") not in FORMATS:
                raise CliError(f"unsupported snapshot format {manifest.get('format')!r}")
            listed = {f["path"] for f in _files(manifest)}
            members = set(zf.namelist()) - {MANIFEST}
            bad = sorted(n for n in members | listed if not _safe(n)) or sorted(members - listed)
            if bad:
                raise CliError(f"unexpected file(s) in the snapshot: {', '.join(bad[:5])}")
            for name in sorted(listed & members):
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, (staging / name).open("wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
        verify(staging, manifest)
        dest.mkdir(parents=True, exist_ok=True)
        for table in manifest["tables"]:
            shutil.rmtree(dest / table, ignore_errors=True)
            (staging / table).rename(dest / table)
        (dest / MANIFEST).write_text(json.dumps(manifest, indent=2))
    except zipfile.BadZipFile as exc:
        raise CliError(f"the download is not a zip file ({exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _check_dest(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise CliError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise CliError(f"{dest} is not empty; choose a new directory or pass --force")


def summary(manifest: dict) -> str:
    """Tables, rows, files and bytes of an unpacked snapshot, and what it is a snapshot of."""
    rows = [[name, t["kind"], t["rows"], len(t["files"]), sum(f["bytes"] for f in t["files"]),
             ", ".join(t["masked"])] for name, t in manifest["tables"].items()]
    total = [sum(r[i] for r in rows) for i in (2, 3, 4)]
    offsets = sum(len(v) for v in manifest["offsets"].values())
    lines = [format_table(["table", "kind", "rows", "files", "bytes", "masked (no --pii)"], rows),
             f"{len(rows)} tables, {total[0]} rows, {total[1]} files, {total[2]} bytes; snapshot at "
             f"{manifest['snapshot_at']}, {offsets} sink offsets in manifest.json"]
    if manifest.get("absent"):
        lines.append(f"not in this database yet (their sink has not run): {', '.join(manifest['absent'])}")
    return "\n".join(lines)


def run(args, settings, http: httpx.Client | None = None) -> int:
    if args.format not in FORMATS:
        raise CliError(f"--format {args.format!r} is not supported; formats: {', '.join(FORMATS)}")
    if args.partition_rows < 1:
        raise CliError("--partition-rows must be at least 1")
    _check_dest(args.dir, args.force)   # before a long download, not after
    client = http or httpx.Client(timeout=httpx.Timeout(args.timeout, connect=10.0))
    parent = args.dir.resolve().parent   # the download waits beside DIR: the disk chosen for the data
    parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".touchstream-export-", dir=parent) as tmp:
            archive = Path(tmp) / "export.zip"
            download(client, settings.query_url, archive, pii=args.pii, tables=args.tables,
                     partition_rows=args.partition_rows, headers=auth_headers(settings))
            manifest = unpack(archive, args.dir, force=args.force)
    finally:
        if http is None:
            client.close()
    echo(summary(manifest))
    return 0
