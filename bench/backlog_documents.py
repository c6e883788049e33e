"""The ops API's documents over a kept `bench/backlog.py` record, for comparing two trees:
the bodies of a fixed sample of the benchmark's requests (and edge cases: past the end,
cursors, limits, errors) from the real app with its reader processes, with their sha256.

    .venv/bin/python -m bench.backlog_documents --schema NAME [--complaints 1000000] > docs.txt

Each line: status, sha256 of the body, the path. Two trees' files are equal when their
documents are byte for byte the same. Timelines record a read each (as the API does).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from bench.backlog import AS_OF, TOKEN, kept_schema, targets  # noqa: E402
from reporting.ops.records import Rules  # noqa: E402
from reporting.ops.view import Aggregator  # noqa: E402
from reporting.web import OpsState, bound_port, create_app, serve  # noqa: E402
from workflow.bootstrap import bootstrap  # noqa: E402


def sample_paths(total: int, seed: int, per_target: int) -> list[str]:
    chosen = [t for t in targets(total, SimpleNamespace(rows=[]), seed)  # type: ignore[arg-type]
              if t.p99_ms is not None and t.name not in ("/backlog",)
              and not t.name.startswith("/risk")]
    rng = random.Random(seed + 1)
    paths: list[str] = []
    for target in chosen:
        unique = sorted(set(target.paths))
        paths += rng.sample(unique, min(per_target, len(unique)))
    as_of = AS_OF.isoformat().replace("+", "%2B")
    kinds = ["acknowledgement", "progress_update", "eight_week", "referral_window", "remedy",
             "senior_manager_review", "deadlock_letter"]
    for kind in kinds:
        for offset in (0, 50, 3850, 3900, 10_000):
            paths.append(f"/complaints?overdue={kind}&as_of={as_of}&offset={offset}&limit=50")
        paths.append(f"/complaints?overdue={kind}&as_of={as_of}&limit=1")
        paths.append(f"/complaints?overdue={kind}&as_of={as_of}&limit=500&offset=20")
        paths.append(f"/complaints?overdue={kind}&as_of=2026-03-01T00:00:00%2B00:00")
    for stage in ("resolved", "closed", "eight_week", "deadlock", "immediate",
                  "senior_manager", "ombudsman", "received", "reopened", "duplicate"):
        for offset in (0, 9950, 10_000):
            paths.append(f"/complaints?state={stage}&offset={offset}&limit=50")
        paths.append(f"/complaints?state={stage}&limit=500&offset=9700")
        paths.append(f"/complaints?state={stage}&limit=1")
    for day in ("2025-10-01", "2025-12-25", "2026-03-29", "2026-09-30", "2026-10-01",
                "2026-10-02", "2024-01-01"):
        for offset in (0, 1000, 2700, 2750):
            paths.append(f"/complaints?received={day}&offset={offset}&limit=50")
    paths += ["/complaints?state=resolved&offset=10001", "/complaints?state=nope",
              "/complaints?state=resolved&after=nonsense", "/complaints?received=2026-13-01",
              "/complaints/search?q=KC-C-0000", "/complaints/search?q=c-0000000",
              "/complaints/search?q=%25", "/complaints/search?q=_", "/complaints/search?q=zzz",
              "/complaints/C-99999999/timeline", "/complaints/C-00000000/timeline"]
    return paths


async def fetch_all(url: str, paths: list[str]) -> list[tuple[int, bytes, str]]:
    app = bootstrap(url, "kilowatt-connect")
    state = OpsState(app.procedure.calendar, Aggregator(Rules(app.procedure.calendar)),
                     status="running")
    state.record = app
    runner = await serve(create_app(state, TOKEN), "127.0.0.1", 0)
    out: list[tuple[int, bytes, str]] = []
    try:
        async with aiohttp.ClientSession() as session:
            async def get(path: str) -> tuple[int, bytes]:
                async with session.get(f"http://127.0.0.1:{bound_port(runner)}{path}",
                                       headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                    return r.status, await r.read()

            queue = list(paths)
            while queue:
                path = queue.pop(0)
                status, body = await get(path)
                out.append((status, body, path))
                # Follow a list's `next` twice (keyset pages) from its first page.
                if status == 200 and path.startswith("/complaints?") and "after=" not in path \
                        and "offset=0" in path:
                    document: dict[str, Any] = json.loads(body)
                    after = document.get("next")
                    for _ in range(2):
                        if not after:
                            break
                        following = f"{path}&after={after.replace('+', '%2B')}"
                        status, body = await get(following)
                        out.append((status, body, following))
                        after = json.loads(body).get("next") if status == 200 else None
    finally:
        await runner.cleanup()
        app.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--schema", required=True)
    parser.add_argument("--complaints", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--per-target", type=int, default=40)
    parser.add_argument("--bodies", help="also write each body to this folder")
    parser.add_argument("--repeat", action="store_true", help="ask every path again, in "
                        "the reverse order (a reader that keeps anything answers from it)")
    args = parser.parse_args()
    paths = sample_paths(args.complaints, args.seed, args.per_target)
    if args.repeat:
        paths += paths[::-1]
    with kept_schema(args.schema) as url:
        results = asyncio.run(fetch_all(url, paths))
    folder = Path(args.bodies) if args.bodies else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    for n, (status, body, path) in enumerate(results):
        print(status, hashlib.sha256(body).hexdigest(), path)
        if folder:
            (folder / f"{n:04d}.json").write_bytes(body)


if __name__ == "__main__":
    main()
