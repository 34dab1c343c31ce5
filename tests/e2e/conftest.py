import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import labapi  # noqa: E402


@pytest.fixture(scope="session")
def lab():
    try:
        return labapi.load_lab()
    except RuntimeError as error:
        pytest.fail(str(error))
