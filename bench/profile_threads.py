"""Run `tos-tracker` under a profiler that sees every thread, and save pstats.

    python bench/profile_threads.py OUT.prof run --json

The fetch threads do most of a run's work (fetch, extract, store, diff), which cProfile,
tied to the main thread, never sees. yappi (`pip install yappi`) profiles all threads on
CPU time; without it this falls back to cProfile and says so. Read the result with
`python -m pstats OUT.prof`.
"""

from __future__ import annotations

import atexit
import sys


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    sys.argv = ["tos-tracker", *args]
    from tracker.cli import main as cli

    try:
        import yappi
    except ImportError:
        import cProfile

        print("yappi is not installed: profiling the main thread only", file=sys.stderr)
        cProfile.runctx("cli()", {"cli": cli}, {}, out)
        return
    yappi.set_clock_type("cpu")
    yappi.start()

    def save() -> None:
        yappi.stop()
        yappi.get_func_stats().save(out, type="pstat")

    atexit.register(save)
    cli()


if __name__ == "__main__":
    main()
