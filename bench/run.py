"""`python -m bench.run [--quick] [--only p1,p3]`: run the benchmarks, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from bench.config import REPO, WORK, Config
from bench.machine import machine, shell
from bench.report import Row, fmt, write_report

# Run order: P4 first, bound by the launcher's QPS limit rather than by CPU, while the Kafka
# broker starts in the background for P1, P2, P6.
MODULES = {
    "p4": "bench.p4_launch",
    "p1": "bench.p1_telemetry",
    "p2": "bench.p2_latency",
    "p3": "bench.p3_list",
    "p5": "bench.p5_read",
    "p6": "bench.p6_fanout",
    "p7": "bench.p7_idle",
    "p8": "bench.p8_reconcile",
    "p9": "bench.p9_history",
    "p10": "bench.p10_admission",
    "p11": "bench.p11_dashboard",
    "p12": "bench.p12_coverage",
    "p13": "bench.p13_rate_limit",
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(MODULES))
    parser.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    parser.add_argument("--profile-note", default=str(REPO / "bench" / "PROFILE.md"))
    parser.add_argument("--render", metavar="RESULTS_JSON",
                        help="only re-render the report from a run's results.json")
    args = parser.parse_args()
    if args.render:
        return render(args)
    command = "make bench-quick" if args.quick else "make bench"
    if args.only != ",".join(MODULES):
        command = f"python -m bench.run {'--quick ' if args.quick else ''}--only {args.only}"
    started = dt.datetime.now(dt.UTC)
    workdir = WORK / f"{started:%Y%m%d-%H%M%S}-{os.getpid()}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    cfg = Config(quick=args.quick, workdir=workdir)
    info = machine()
    rows: list[Row] = []
    if {"p1", "p2", "p6", "p9", "p11"} & set(args.only.split(",")):
        cfg.prestart_kafka()
    notes: list[str] = []
    try:
        for key in args.only.split(","):
            module = importlib.import_module(MODULES[key])
            print(f"== {key}: {module.__doc__.strip().splitlines()[0]}", flush=True)
            began = time.perf_counter()
            head = shell("git rev-parse --short HEAD").strip()
            try:
                got = module.run(cfg)
            except Exception as exc:  # one failing benchmark must not hide the others
                traceback.print_exc()
                note = f"{type(exc).__name__}: {exc}"[:400]
                got = [Row(f"{key.upper()} (failed)", None, "", note=note)]
            for row in got:
                print(f"   {row.figure}: {fmt(row.value, row.unit)} vs "
                      f"{fmt(row.baseline, row.unit)} -> met={row.met}", flush=True)
            print(f"   ({time.perf_counter() - began:.0f} s)", flush=True)
            for row in got:  # others commit while benchmarks run: say which code each measured
                row.note = f"{row.note} [code {head}]".strip()
            rows += got
            notes.append("- " + " ".join(module.__doc__.split()))
            saved = {"command": command, "started": started.isoformat(), "info": info,
                     "notes": notes, "rows": [dataclasses.asdict(r) for r in rows]}
            (workdir / "results.json").write_text(json.dumps(saved, indent=1))
            write_report(Path(args.out), rows, command=command, started=started, info=info,
                         notes=notes, profile=profile_note(args))
    finally:
        cfg.close()
    saved["took"] = (dt.datetime.now(dt.UTC) - started).total_seconds()
    (workdir / "results.json").write_text(json.dumps(saved, indent=1))
    print(f"wrote {args.out} (results: {workdir / 'results.json'})")
    return 0


def profile_note(args: argparse.Namespace) -> str:
    try:
        return Path(args.profile_note).read_text()
    except OSError:
        return ""


def render(args: argparse.Namespace) -> int:
    saved = json.loads(Path(args.render).read_text())
    rows = [Row(**r) for r in saved["rows"]]
    started = dt.datetime.fromisoformat(saved["started"])
    write_report(Path(args.out), rows, command=saved["command"], started=started,
                 info=saved["info"], notes=saved["notes"], profile=profile_note(args),
                 took=saved.get("took"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
