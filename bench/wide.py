"""A wide, sparse catalogue (issue 13, item 3): peak memory and time of the CLI on 100,000 distinct items.

``write_wide_file`` writes the synthetic interactions file of the defect: 10,000 users, 100,000 distinct items
(every item at least once, plus a Zipf tail of 25,000 repeats, so about 12 interactions a user), 1.5 MB of
``user,item`` lines. Each command then runs in its own interpreter and its peak resident memory is read
from ``os.wait4`` (the child's own ``ru_maxrss``), with its wall time:

- ``evaluate --models pop,itemknn``: scores every evaluated user in blocks sized by cells
  (``reco_core.scale.auto_block_size``: 10 users at 100,000 items), and fits item-kNN on sparse products;
- ``fuse --models pop,itemknn``: a live session over every user would need about 28 GiB; it is refused up front
  with a one-line ScaleError giving the figure and the fixes;
- ``python -c "import reco_core..."``: the interpreter and the engine's imports alone (torch among them), for
  reference.

Run: ``.venv/bin/python -m bench.wide [--users 10000 --items 100000]``. Not part of ``make bench``'s sections:
it takes about two minutes on the 2-core machine, most of it ranking 2 x 10^9 score cells.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def write_wide_file(path: Path, n_users: int = 10_000, n_items: int = 100_000, seed: int = 0) -> Path:
    """``user,item`` lines: every user and every item at least once, plus ``n_items // 4`` Zipf-drawn repeats."""
    rng = np.random.default_rng(seed)
    tail = (rng.zipf(1.3, n_items // 4) - 1) % n_items
    items = np.concatenate([np.arange(n_items), tail])
    users = rng.integers(0, n_users, len(items))
    users[: min(n_users, len(users))] = np.arange(min(n_users, len(users)))
    lines = "".join(f"u{u},i{i}\n" for u, i in zip(users.tolist(), items.tolist(), strict=True))
    path.write_text("user,item\n" + lines)
    return path


_WRAPPER = (
    "import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); _, status, ru = os.wait4(p.pid, 0); "
    "print('PEAK_KIB', ru.ru_maxrss, 'RC', os.waitstatus_to_exitcode(status))"
)


def peak(cmd: list[str], timeout: float = 600.0) -> dict[str, object]:
    """Run ``cmd`` from the repository root under a wrapper that reads its own peak RSS with ``os.wait4``.

    Returns rc, wall seconds (interpreter start included), peak_mib and the command's last output line.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - start
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    marker = [line for line in lines if line.startswith("PEAK_KIB ")]
    rest = [line for line in lines if not line.startswith("PEAK_KIB ")]
    result: dict[str, object] = {
        "rc": proc.returncode,
        "seconds": round(seconds, 1),
        "output": rest[-1] if rest else "",
    }
    if marker:
        words = marker[-1].split()
        result["peak_mib"] = round(int(words[1]) / 1024)
        result["rc"] = int(words[3])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args(argv)
    py = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        path = write_wide_file(Path(tmp) / "wide.csv", args.users, args.items)
        print(f"{path.stat().st_size / 1e6:.1f} MB, {args.users:,} users x {args.items:,} items")
        runs = {
            "imports only": [py, "-c", "import reco_core.cli_commands, reco_core.experiment"],
            "evaluate pop,itemknn": [
                py,
                "-m",
                "reco_core",
                "evaluate",
                "--interactions",
                str(path),
                "--models",
                "pop,itemknn",
                "--format",
                "csv",
            ],
            "fuse pop,itemknn": [py, "-m", "reco_core", "fuse", "--interactions", str(path), "--models", "pop,itemknn"],
        }
        for name, cmd in runs.items():
            r = peak(cmd)
            print(f"{name}: rc {r['rc']}, {r['seconds']} s, peak {r.get('peak_mib', '?')} MiB")
            if r["rc"] != 0:
                print(f"  {str(r['output'])[:400]}")


if __name__ == "__main__":
    main()
