import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import collection_build  # noqa: E402  (needs the path set above)


def skip_local_files(directory: str, names: list[str]) -> set[str]:
    """Leave out of the copy what tests and tools wrote into the working tree."""
    skipped = {name for name in names if name in (".pytest_cache", "__pycache__") or name.endswith(".tar.gz")}
    if Path(directory) == collection_build.COLLECTION / "tests" and "output" in names:
        skipped.add("output")
    return skipped


@pytest.fixture(scope="session")
def release_build(tmp_path_factory):
    """Build the tarball from a copy of the collection and install it into a clean path."""
    root = tmp_path_factory.mktemp("release")
    source = root / "source" / "ansible_collections" / "soracom" / "krypton"
    shutil.copytree(collection_build.COLLECTION, source, ignore=skip_local_files)
    for relative in collection_build.IGNORED_FILES:
        path = source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("must not be in the tarball\n")

    dist = root / "dist"
    dist.mkdir()
    tarball = collection_build.build_tarball(source, dist)
    collections_path = root / "collections"
    collections_path.mkdir()
    installed = collection_build.install_tarball(tarball, collections_path)
    return SimpleNamespace(root=root, source=source, tarball=tarball, collections_path=collections_path,
                           installed=installed)
