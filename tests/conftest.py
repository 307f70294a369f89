"""Shared paths for the test suite."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
GOLDENS = ROOT / "goldens"
SPEC = ROOT / "spec"
