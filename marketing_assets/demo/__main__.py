"""Command line: ``python -m marketing_assets.demo generate --out DIR --scale small|default|large|xlarge --seed N [--minimal]``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from .api import run
from .config import SCALES


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketing_assets.demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the demo landing zone and its ground truth")
    gen.add_argument("--out", required=True, help="landing directory to write (truth goes to OUT/_truth)")
    gen.add_argument("--scale", choices=sorted(SCALES), default="default")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--end-date", type=_date, default=None, help="last day of history (default: today, UTC)")
    gen.add_argument(
        "--minimal", action="store_true",
        help="only the four CRM tables attribution needs (contacts, marketing and sales touchpoints, opportunities), required columns only",
    )
    args = parser.parse_args(argv)
    if args.command == "generate":
        run(args.out, scale=args.scale, seed=args.seed, end_date=args.end_date, minimal=args.minimal)
    return 0


if __name__ == "__main__":
    sys.exit(main())
