"""Where the installation keeps what every project shares (jars, real data sets, tools, trained weights).

A project's own folders (its environments, sources, definitions, schemas, expectations) are in
:mod:`lakehouse.project.layout`; this is only the installation's cache.
"""

import os
from pathlib import Path

INSTALL_ROOT = Path(__file__).resolve().parents[2]  # the clone (an editable install) or site-packages
CACHE_DIR = INSTALL_ROOT / ".cache"  # this installation's own: secrets, servers' state, Data Docs


def user_cache_dir() -> Path:
    """What this user's clones share, as pip and Ivy share theirs: downloads that never change once fetched
    (Maven jars, real data sets) and deterministic builds (a training recipe's weights).
    ``$LAKEHOUSE_USER_CACHE``, else ``$XDG_CACHE_HOME/lakehouse``, else ``~/.cache/lakehouse``. Each entry is
    named by what it holds (a package set's hash, a data set's name, a recipe's digest), so clones of other
    versions never overwrite each other's."""
    if os.environ.get("LAKEHOUSE_USER_CACHE"):
        return Path(os.environ["LAKEHOUSE_USER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lakehouse"
