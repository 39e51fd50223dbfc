"""Project paths, defined once."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
NOTEBOOKS = ROOT / "notebooks"
SAMPLE_DATA = ROOT / "data" / "sample"
REPORTS = ROOT / "reports"
TEMPLATES = PACKAGE_DIR / "reports" / "templates"
