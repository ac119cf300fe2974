"""Where the installation keeps what every project shares (jars, real data sets, tools).

A project's own folders (its environments, sources, definitions, schemas, expectations) are in
:mod:`lakehouse.project.layout`; this is only the installation's cache.
"""

from pathlib import Path

INSTALL_ROOT = Path(__file__).resolve().parent.parent  # the clone (an editable install) or site-packages
CACHE_DIR = INSTALL_ROOT / ".cache"
