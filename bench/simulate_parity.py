"""The documents `complaints simulate` gives for a fixed set of cases, and their sha256: run it
before and after a change to the replay and compare (they must be byte-identical).

    .venv/bin/python -m bench.simulate_parity OUTDIR

Cases: 20,000 generated events 1-12 min apart and 1-63 s apart, variants eight_weeks_days=42
and resolution_target_days=10, an --until inside the file, a shuffled 3,000-line file with a
byte order mark, CRLF, blank lines, non-JSON and duplicated lines (each through the CLI, as
a user runs it, --format json and --html), and one replay pair in this process with only 300
complaints kept as objects (most read back from their cold form), its whole result.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

from bench.generate import write


def messy(source: Path, target: Path) -> Path:
    lines = source.read_bytes().split(b"\n")
    lines = [line for line in lines if line]
    rng = random.Random(11)
    rng.shuffle(lines)
    out: list[bytes] = []
    for i, line in enumerate(lines):
        out.append(line + (b"\r" if i % 5 == 0 else b""))
        if i % 97 == 0:
            out.append(b"")
            out.append(b"   ")
        if i % 211 == 0:
            out.append(b"not json at all")
            out.append(b"[1, 2]")
        if i % 131 == 0:
            out.append(line)  # a duplicate
    target.write_bytes(b"\xef\xbb\xbf" + b"\n".join(out) + b"\n")
    return target


def main() -> None:
    outdir = Path(sys.argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    inputs = outdir / "inputs"
    inputs.mkdir(exist_ok=True)
    default = inputs / "e20k.jsonl"
    gap = inputs / "e20k-g63.jsonl"
    small = inputs / "e3k.jsonl"
    shuffled = inputs / "e3k-messy.jsonl"
    if not default.exists():
        write(default, 20_000)
        write(gap, 20_000, gap_seconds=63)
        write(small, 3_000)
        messy(small, shuffled)
    cli = [str(Path(sys.executable).parent / "complaints"), "simulate", "--format", "json"]
    cases = {
        "default-ew42": [str(default), "--set", "eight_weeks_days=42"],
        "g63-ew42": [str(gap), "--set", "eight_weeks_days=42"],
        "g63-rt10": [str(gap), "--set", "resolution_target_days=10"],
        "default-until": [str(default), "--set", "eight_weeks_days=42",
                          "--until", "2026-03-15T12:00:00+00:00"],
        "g63-progress-none": [str(gap), "--set", "progress_update_interval_days=none",
                              "--config", "lastmile"],
        "messy-ew42": [str(shuffled), "--set", "eight_weeks_days=42"],
    }
    for name, args in cases.items():
        html = outdir / f"{name}.html"
        done = subprocess.run([*cli, *args, "--html", str(html)], capture_output=True,
                              check=True)
        (outdir / f"{name}.json").write_bytes(done.stdout)
        (outdir / f"{name}.stderr").write_bytes(done.stderr)
    # Most complaints cold: in this process, serial, so the patched size holds.
    import tempfile

    from consumers import replay_store
    from consumers.simulate import prepare, simulate, with_settings
    from workflow.procedure import load_procedure

    replay_store.HOT_COMPLAINTS = 300
    base = load_procedure("kilowatt-connect")
    with tempfile.TemporaryDirectory() as tmp:
        events = prepare(gap, None, Path(tmp))
        result = simulate(events, base, with_settings(base, ["eight_weeks_days=42"]),
                          parallel=False)
    (outdir / "g63-cold.json").write_text(json.dumps(
        {"document": result.document, "letters_by_month": result.letters_by_month,
         "ingest": result.ingest}, sort_keys=True))
    for path in sorted(outdir.glob("*.*")):
        if path.is_file():
            print(hashlib.sha256(path.read_bytes()).hexdigest(), path.name)


if __name__ == "__main__":
    main()
