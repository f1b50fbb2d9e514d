"""Save the mean of a training run's last checkpoints as its ``average/`` checkpoint.

    python scripts/average_run.py RUN [--fraction 0.2]

An RL² run trained with ``--set average=F`` writes ``RUN/average`` when it ends: the mean of
the checkpoints of its last ``F`` of updates (0.2: the last fifth). This writes the same for a
run that has ended already, whatever it was trained with, from the checkpoints it kept (every
``--checkpoint-every`` updates, 10 by default, and the last). The mean is a checkpoint like any
other (``metarena eval --agent RUN/average``); its meta says which updates it averages
(``extra.average``). An earlier ``RUN/average`` is replaced.
"""

from __future__ import annotations

import argparse
import sys

from metarena.agents.checkpoint import CheckpointError, read_meta
from metarena.agents.rundir import CONFIG_NAME, RunDir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    parser.add_argument("run", help="a training run's directory (metarena train --out)")
    parser.add_argument("--fraction", type=float, default=0.2,
                        help="the last share of the run's updates whose checkpoints are averaged, in (0, 1] "
                             "(default 0.2: the last fifth)")
    args = parser.parse_args(argv)
    run = RunDir(args.run)
    if not run.config_path.exists():
        parser.error(f"{args.run}: not a training run's directory (no {CONFIG_NAME}); give the --out of a "
                     "metarena train run")
    try:
        written = run.write_average(args.fraction)
    except (CheckpointError, ValueError, OSError) as exc:
        parser.error(str(exc))
    averaged = read_meta(written).extra["average"]["updates"]
    print(f"wrote {written}: the mean of {len(averaged)} checkpoints, updates {averaged[0]}-{averaged[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
