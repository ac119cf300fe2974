"""Run one step of this project's pipeline: `spark-submit jobs/run.py STEP [options]`.

STEP is a step name or a table it writes (`lakehouse steps` lists them; `STEP --help` shows its options),
e.g. `spark-submit jobs/run.py gold.daily_active_users --conf-file conf/local.yaml`.
"""

import sys
from pathlib import Path

from lakehouse.engine import step_main

if __name__ == "__main__":
    sys.exit(step_main(sys.argv[1:], project=str(Path(__file__).resolve().parent.parent)))
