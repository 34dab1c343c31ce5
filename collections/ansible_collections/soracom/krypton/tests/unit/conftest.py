"""Make the collection importable when pytest runs without ansible-test."""
import sys
from pathlib import Path

try:
    import ansible_collections.soracom.krypton  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[5]))
