"""Letter PDFs rendered in other interpreters while the rest of the unit tests run.

A PDF costs about half a second of WeasyPrint, and the letter tests need two renderings of
each golden letter: the one their properties are read from, and a second one, made in another
interpreter, that the reproducibility tests compare it with. Both sets are rendered by
subprocesses started as soon as collection ends (tests/unit/conftest.py), so they run on the
machine's other core beside the tests that come before the letter tests, many of which mostly
wait (timeouts, sleeps). A test asks for one letter and waits only until that file exists.

Each set is rendered in its own order, environment and hash seed (`Renders.start`), so
that equality between the two sets says what the reproducibility tests claim: the bytes do not
depend on the process, the hash seed, the environment's SOURCE_DATE_EPOCH, or on which letters
were rendered before.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Each letter is written under a temporary name and renamed once complete, so a file that
# exists is whole.
SCRIPT = (
    "import json, os, pathlib, sys\n"
    "from letters.render import render_pdf\n"
    "out = pathlib.Path(sys.argv[1])\n"
    "for name, context in json.loads((out / 'contexts.json').read_text('utf-8')):\n"
    "    part = out / f'{name}.part'\n"
    "    part.write_bytes(render_pdf(context))\n"
    "    os.replace(part, out / f'{name}.pdf')\n"
)

WAIT_S = 180.0


class Renders:
    """One set of letters rendered by one subprocess, in the order given."""

    def __init__(self, directory: Path, process: subprocess.Popen[bytes]) -> None:
        self.directory = directory
        self.process = process

    @classmethod
    def start(cls, contexts: Sequence[tuple[str, Mapping[str, Any]]], *,
              hash_seed: str | None = None, source_date_epoch: bool = True) -> Renders:
        directory = Path(tempfile.mkdtemp(prefix="letter-pdfs-"))
        (directory / "contexts.json").write_text(json.dumps(list(contexts)), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if hash_seed is not None:
            env["PYTHONHASHSEED"] = hash_seed
        if not source_date_epoch:
            env.pop("SOURCE_DATE_EPOCH", None)
        with (directory / "stderr").open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", SCRIPT, str(directory)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=ROOT)
        return cls(directory, process)

    def pdf(self, name: str) -> bytes:
        """The letter's PDF, waiting for it if the subprocess has not written it yet."""
        path = self.directory / f"{name}.pdf"
        deadline = time.monotonic() + WAIT_S
        while not path.exists():
            returncode = self.process.poll()
            if returncode is not None and not path.exists():
                stderr = (self.directory / "stderr").read_text("utf-8", "replace")
                raise AssertionError(f"the renderer exited ({returncode}) without {name}.pdf:"
                                     f"\n{stderr}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}.pdf not rendered within {WAIT_S:.0f} s")
            time.sleep(0.01)
        return path.read_bytes()

    def close(self) -> None:
        if self.process.poll() is None:  # letters no test asked for: not needed
            self.process.kill()
        self.process.wait()
        shutil.rmtree(self.directory)


class LetterRenders:
    """The two sets the letter tests read: `first` (the renderings whose properties they test)
    and `other` (the same letters in reverse order, another hash seed, no SOURCE_DATE_EPOCH),
    started together."""

    def __init__(self, contexts: Sequence[tuple[str, Mapping[str, Any]]],
                 compared: Sequence[str]) -> None:
        self.first = Renders.start(contexts)
        others = [(name, context) for name, context in contexts if name in compared]
        self.other = Renders.start(list(reversed(others)), hash_seed="12345",
                                   source_date_epoch=False)

    def close(self) -> None:
        self.first.close()
        self.other.close()


_started: LetterRenders | None = None


def start(contexts: Sequence[tuple[str, Mapping[str, Any]]], compared: Sequence[str]) -> None:
    """Start both sets (once per session)."""
    global _started
    if _started is None:
        _started = LetterRenders(contexts, compared)


def renders() -> LetterRenders:
    """The sets started for this session by tests/unit/conftest.py."""
    if _started is None:
        raise RuntimeError("letter renders not started: tests/unit/conftest.py starts them")
    return _started


def stop() -> None:
    global _started
    if _started is not None:
        _started.close()
        _started = None
