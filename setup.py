"""Packaging for the lakehouse platform: `pip install -e .` gives the `lakehouse` command."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def pinned_requirements():
    """The runtime pins from requirements.txt (test-only tools excluded)."""
    lines = (HERE / "requirements.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines]
    return [pin for pin in pins if pin and not pin.startswith(("pytest", "ruff"))]


setup(
    name="lakehouse",
    version="0.1.0",
    description="A lakehouse data platform for deep learning on Apache Spark and Delta Lake",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["lakehouse", "lakehouse.*", "jobs"]),
    install_requires=pinned_requirements(),
    extras_require={"test": ["pytest>=8.0"]},
    entry_points={"console_scripts": ["lakehouse=lakehouse.cli.main:main"]},
)
