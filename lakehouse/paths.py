"""Where the project's own folders are, independent of the current directory."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
JOBS_DIR = PROJECT_ROOT / "jobs"
CACHE_DIR = PROJECT_ROOT / ".cache"
DEFAULT_CONF_FILE = CONF_DIR / "local.yaml"
