"""The test suite; folders mirror shared/ (traffic, costs, alerts, email, logs) plus standins/ and infra/."""

from pathlib import Path

# The repository root (the app root), the one place tests resolve it.
ROOT = Path(__file__).resolve().parents[1]
