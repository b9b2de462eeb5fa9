"""The demo generator's entry points: a scale that fits in memory is generated in one shot (:mod:`.generator`), a
scale with ``shard_accounts`` (``xlarge``) in streaming shards (:mod:`.streaming`, built on the one-shot writers)."""

from __future__ import annotations

import time

from . import generator, streaming
from .config import SCALES


def generate(out_dir, scale: str = "default", seed: int = 42, end_date=None, minimal: bool = False) -> dict:
    """Generate the demo landing zone into ``out_dir`` and return the manifest (see :func:`.generator.generate`)."""
    sc = SCALES.get(scale)
    if sc is not None and sc.shard_accounts:
        root, tl = generator.prepare(out_dir, end_date)
        return streaming.generate_sharded(root, sc, seed, tl, minimal)
    return generator.generate(out_dir, scale=scale, seed=seed, end_date=end_date, minimal=minimal)


def run(out_dir, scale: str = "default", seed: int = 42, end_date=None, minimal: bool = False) -> dict:
    """``generate()`` plus a printed summary (used by the CLI)."""
    t0 = time.perf_counter()
    manifest = generate(out_dir, scale=scale, seed=seed, end_date=end_date, minimal=minimal)
    print(generator.summarize(manifest, time.perf_counter() - t0))
    return manifest
