"""Quality gates: Great Expectations suites from ``expectations/``, each rule with an action.

- ``suites``  load and check the YAML suites (bad files fail at start-up, naming file and rule)
- ``gate``    run a suite with Great Expectations on a DataFrame; split off the rows to quarantine
- ``results`` append every rule's outcome to the ``quality.results`` Delta table
"""

import os

# The platform runs without web access: Great Expectations must not try to send usage statistics.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
