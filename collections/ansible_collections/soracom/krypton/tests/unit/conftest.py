"""Make the collection importable when pytest runs without ansible-test."""
import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("ansible_collections.soracom") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[5]))
