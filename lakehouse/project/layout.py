"""The folders of a project and where the platform's own files are.

A project is a folder apart from the installed package::

    lakehouse_project.yaml         marks the folder (name, description)
    conf/<environment>.yaml        environments: where the warehouse is, how Spark starts (conf/local.yaml by default)
    sources/<name>.yaml            one source each (a database, a folder of files, a folder of images)
    tables/<layer>/<name>.sql|.py  one definition per silver or gold table
    schemas/<layer>/<table>.yaml   columns of a table (written by ``lakehouse source add-*``, then the user's)
    expectations/<layer>/<table>.yaml  its quality rules
    jobs/                          the project's own Python jobs (optional)

The platform's own tables (quarantine tables, ``quality.results``, ``ops.*``) and the columns it stamps
are described by files inside the package, under ``lakehouse/builtin/``.
"""

from __future__ import annotations

from pathlib import Path

MARKER_FILE = "lakehouse_project.yaml"
CONF_DIR = "conf"
DEFAULT_ENVIRONMENT = "local"
SOURCES_DIR = "sources"
TABLES_DIR = "tables"
SCHEMAS_DIR = "schemas"
EXPECTATIONS_DIR = "expectations"
JOBS_DIR = "jobs"
NOTEBOOKS_DIR = "notebooks"
# Layers a project defines tables in (bronze tables come from sources; quality and ops are the platform's).
DEFINITION_LAYERS = ("silver", "gold")

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "builtin"
BUILTIN_SCHEMAS = BUILTIN_DIR / "schemas"
BUILTIN_EXPECTATIONS = BUILTIN_DIR / "expectations"


def default_conf_file(root: Path) -> Path:
    """The environment a project runs in unless told otherwise: ``conf/local.yaml``."""
    return Path(root) / CONF_DIR / f"{DEFAULT_ENVIRONMENT}.yaml"
