"""Give a trained RL² agent with a map memory a wider map, with the same weights.

    python scripts/widen_map.py CHECKPOINT --side 21 --out DIR

A map memory (``--set map=N``) clips every level wider than its ``N`` cells: the player's
row and column stop at the edge, and what lies beyond is never written. The memory has no
weights, and what the policy reads of it does not depend on its side but for the targets'
offsets and distances, which are measured in map sides. So the same weights can play with a
wider map: this writes a copy of ``CHECKPOINT`` (a run directory or a checkpoint) whose map is
``--side`` cells wide and whose targets are still measured in the side it was trained with
(``map_unit``). On the levels it was trained on it reads, and plays, exactly as before (the
cells beyond the level read as walls either way); on wider ones it keeps the whole level.
The copy is a checkpoint like any other (``metarena eval --agent DIR``); its meta records
where it came from (``extra.widened_from``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from metarena.agents.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from metarena.agents.rundir import checkpoint_path


def widen(path: str | Path, side: int, out: str | Path) -> Path:
    """Write the checkpoint at ``path`` with a map of ``side`` cells to ``out``; return its path.
    Raises ``ValueError`` where it has no map or its map is not narrower than ``side``."""
    source = checkpoint_path(path)
    state, meta = load_checkpoint(source)
    arch = dict(meta.architecture)
    if meta.algorithm != "rl2" or not arch.get("map"):
        raise ValueError(f"{source}: not an RL² agent with a map memory (algorithm {meta.algorithm!r}, "
                         f"map {arch.get('map', 0)}); only a map can be widened")
    old = int(arch["map"])
    if side <= old:
        raise ValueError(f"--side {side}: the map of {source} is already {old} cells wide; give a wider side")
    arch["map_unit"] = int(arch.get("map_unit") or old)
    arch["map"] = side
    extra = dict(meta.extra, widened_from={"checkpoint": source.name, "map": old, "data_sha256": meta.data_sha256})
    new = dataclasses.replace(meta, architecture=arch, extra=extra, created_at=None, git_commit=None)
    return save_checkpoint(out, state, new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    parser.add_argument("checkpoint", help="a run directory or checkpoint of an RL² agent with a map memory")
    parser.add_argument("--side", type=int, required=True, help="the wider map's side, in cells")
    parser.add_argument("--out", required=True, help="the folder to write the widened checkpoint to")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        parser.error(f"--out {out}: the folder is not empty; give a new one (nothing is overwritten)")
    try:
        written = widen(args.checkpoint, args.side, out)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    print(f"wrote {written}: map {args.side} cells, its targets measured as before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
