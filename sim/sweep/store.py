"""Sweep results on disk: parquet shards in one folder per spec, safe to kill and resume.

Layout of ``--out DIR``::

    DIR/sweep.json              {"spec_id", "name", "version"}: which spec these shards belong to
    DIR/spec.json               the validated spec (what the plots and reports read back)
    DIR/shards/part-*.parquet   rows, one shard per finished batch of points

A shard is written to a temporary name and renamed into place (``os.replace`` is atomic on POSIX), so a
``kill -9`` leaves whole shards only: every point in a shard is finished, and a point not in any shard is
simply run again on resume. A folder holding another spec's shards is refused, never mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import polars as pl

from .. import __version__
from ..errors import InputError


def spec_id(spec_json: str) -> str:
    return hashlib.sha256(spec_json.encode()).hexdigest()[:16]


class Store:
    """The shards of one spec under ``root``."""

    def __init__(self, root: str | Path, spec_json: str, name: str):
        self.root = Path(root)
        self.shards = self.root / "shards"
        self.id = spec_id(spec_json)
        meta = self.root / "sweep.json"
        if meta.exists():
            try:
                old = json.loads(meta.read_text())
            except (OSError, ValueError):
                raise InputError(f"--out {root}: sweep.json is unreadable; use an empty folder") from None
            if old.get("spec_id") != self.id:
                raise InputError(f"--out {root}: holds shards of another spec ({old.get('name')!r}, id "
                                 f"{old.get('spec_id')}); this spec is {name!r} (id {self.id}): use another folder")
        elif self.root.exists() and any(self.root.iterdir()):
            raise InputError(f"--out {root}: not empty and not a sweep folder (no sweep.json); use an empty folder")
        self.shards.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.root / "spec.json", spec_json)
        _atomic_write(meta, json.dumps({"spec_id": self.id, "name": name, "version": __version__}, indent=1))
        self._count = 0

    def done_ids(self) -> set[str]:
        """Point ids already stored."""
        files = sorted(self.shards.glob("part-*.parquet"))
        if not files:
            return set()
        return set(pl.concat([pl.read_parquet(f, columns=["point_id"]) for f in files])["point_id"].to_list())

    def write(self, rows: list[dict]) -> Path | None:
        """One shard of ``rows`` (atomically)."""
        if not rows:
            return None
        self._count += 1
        name = f"part-{time.time_ns():020d}-{os.getpid()}-{self._count:05d}.parquet"
        tmp = self.shards / f".{name}.tmp"
        frame = rows_frame(rows)
        frame.write_parquet(tmp)
        os.replace(tmp, self.shards / name)
        return self.shards / name


def rows_frame(rows: list[dict]) -> pl.DataFrame:
    """Rows (dicts, possibly with different keys and all-None columns) as one frame."""
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(k for k in r if not k.startswith("_")))
    cols = list(keys)
    return pl.DataFrame([{k: r.get(k) for k in cols} for r in rows], infer_schema_length=None)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_rows(root: str | Path) -> pl.DataFrame:
    """All rows of a sweep folder, one per point, sorted by point id."""
    root = Path(root)
    if not (root / "sweep.json").exists():
        raise InputError(f"{root}: not a sweep folder (no sweep.json); run `lmsim sweep SPEC --out {root}` first")
    files = sorted((root / "shards").glob("part-*.parquet"))
    if not files:
        raise InputError(f"{root}: the sweep has no results yet")
    frame = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    first = [c for c in LEAD_COLUMNS if c in frame.columns]
    frame = frame.select(first + sorted(c for c in frame.columns if c not in first))
    return frame.unique("point_id", keep="first", maintain_order=True).sort("point_id")


#: the columns read_rows puts first (the rest follow in name order, whatever order the shards hold them in)
LEAD_COLUMNS = ("point_id", "traffic", "model", "status", "reason", "plan", "concurrency", "rate",
                "tokens_per_s_per_user_p50", "output_tokens_per_s_per_gpu")


def read_spec(root: str | Path):
    """The validated spec stored with a sweep."""
    from ..schema.experiment import ExperimentSpec

    return ExperimentSpec.model_validate_json((Path(root) / "spec.json").read_text())
