# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pi root filesystem (debootstrap), the Pis' local apt repository, and the per-lab image layer.

The root filesystem and the apt repository are cached under /var/cache/soracom-krypton-lab/
in a directory named after a hash of the build recipe, so they are built once per recipe
and survive ``labctl down``. The lab CA and the SSH key live in the state directory and may
change between labs, so they go into a separate overlay layer in the state directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from . import LabError
from .config import APT_REPO_URL, CACHE_DIR, StatePaths
from .sysutil import file_lock, is_mountpoint, log, run, write_file

SUITE = "bookworm"

# Bump RECIPE_FORMAT when build_image() changes in a way the recipe data does not show.
RECIPE_FORMAT = 1

IMAGE_PACKAGES = (
    "openssh-server", "python3", "python3-apt", "iproute2", "ca-certificates", "sudo", "curl",
    "systemd-sysv", "dbus",
)
# What the collection's device role installs on a Pi; the Pis can only reach this repository.
# libfaketime is for the end-to-end tests, which fake a wrong clock for one process on a Pi.
APT_REPO_PACKAGES = ("mosquitto-clients", "jq", "python3-paho-mqtt", "python3-cryptography", "libfaketime")

IMAGE_FILES = {
    "/etc/apt/sources.list.d/lab.list": f"deb [trusted=yes] {APT_REPO_URL} ./\n",
    "/etc/ssh/sshd_config.d/soracom-krypton-lab.conf": (
        "# Lab Pis: root logs in with the lab's SSH key only.\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UseDNS no\n"
    ),
    # The lab has no DNS server. Names come from /etc/hosts, and other lookups fail at once
    # on the Pi's own loopback instead of being sent anywhere.
    "/etc/resolv.conf": "# soracom.krypton lab: no DNS, names are in /etc/hosts\nnameserver 127.0.0.1\n",
}
IMAGE_REMOVE = ("/etc/apt/sources.list", "/etc/hostname")

LAB_CA_NAME = "soracom-krypton-lab-root-ca.crt"


def host_arch() -> str:
    return run(["dpkg", "--print-architecture"]).stdout.strip()


def image_recipe(arch: str) -> dict:
    """Return the data that decides the image's content; its hash names the cache entry.

    The mirror is left out on purpose: any mirror of the suite gives the same image.
    """
    return {
        "format": RECIPE_FORMAT,
        "suite": SUITE,
        "variant": "minbase",
        "arch": arch,
        "include": sorted(IMAGE_PACKAGES),
        "files": IMAGE_FILES,
        "remove": list(IMAGE_REMOVE),
        "apt_repo_packages": sorted(APT_REPO_PACKAGES),
    }


def recipe_hash(recipe: dict) -> str:
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --- Debian mirror ---------------------------------------------------------------------------

def _one_line_entries(text: str) -> list[tuple[str, list[str]]]:
    """Parse one-line ``deb [opts] URI suite components`` entries into (uri, [suite])."""
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line[4:])
        fields = line.split()
        if len(fields) >= 2:
            entries.append((fields[0], [fields[1]]))
    return entries


def _deb822_entries(text: str) -> list[tuple[str, list[str]]]:
    """Parse deb822 ``.sources`` stanzas of type deb into (uri, suites) pairs."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        for uri in fields.get("uris", "").split():
            entries.append((uri, suites))
    return entries


def find_debian_mirror(suite: str = SUITE, apt_dir: Path = Path("/etc/apt")) -> str:
    """Return the URI of the first apt source of this machine that carries ``suite``.

    Env KRYPTON_LAB_MIRROR overrides the lookup.
    """
    override = os.environ.get("KRYPTON_LAB_MIRROR")
    if override:
        return override
    candidates: list[Path] = []
    if (apt_dir / "sources.list").exists():
        candidates.append(apt_dir / "sources.list")
    candidates += sorted((apt_dir / "sources.list.d").glob("*.list"))
    candidates += sorted((apt_dir / "sources.list.d").glob("*.sources"))
    for path in candidates:
        text = path.read_text(errors="replace")
        entries = _deb822_entries(text) if path.suffix == ".sources" else _one_line_entries(text)
        for uri, suites in entries:
            if suite in suites:
                return uri.rstrip("/")
    raise LabError(f"no apt source for Debian {suite} found under {apt_dir}; "
                   "set KRYPTON_LAB_MIRROR to a Debian mirror URL")


# --- image build ----------------------------------------------------------------------------

class Image:
    """A cached Pi image: ``rootfs/`` plus the apt repository ``apt-repo/`` built from it."""

    def __init__(self, cache_dir: Path = CACHE_DIR, arch: str | None = None):
        self.recipe = image_recipe(arch or host_arch())
        self.hash = recipe_hash(self.recipe)
        self.cache_dir = cache_dir
        self.dir = cache_dir / "images" / self.hash

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def apt_repo(self) -> Path:
        return self.dir / "apt-repo"

    @property
    def marker(self) -> Path:
        return self.dir / "image.json"

    def is_built(self) -> bool:
        return self.marker.exists()

    def ensure(self) -> None:
        """Build the image and the apt repository unless the cache already has them."""
        if self.is_built():
            return
        with file_lock(self.cache_dir / "build.lock", timeout=1800):
            if not self.is_built():
                self._build()

    def _build(self) -> None:
        mirror = find_debian_mirror()
        partial = self.dir.with_name(self.hash + ".partial")
        if partial.exists():
            _remove_tree(partial)
        partial.mkdir(parents=True)
        build_log = partial / "build.log"
        rootfs = partial / "rootfs"
        started = time.monotonic()
        log(f"building Pi image {self.hash} from {mirror} (once; about a minute), log {build_log}")

        def step(cmd: list[str], timeout: float = 900) -> None:
            with open(build_log, "a") as handle:
                handle.write(f"$ {' '.join(cmd)}\n")
            result = run(cmd, check=False, timeout=timeout)
            with open(build_log, "a") as handle:
                handle.write(result.stdout + result.stderr)
            if result.returncode != 0:
                raise LabError(f"image build step failed (exit {result.returncode}): {' '.join(cmd)}; "
                               f"see {build_log}")

        step(["debootstrap", "--variant=minbase", f"--arch={self.recipe['arch']}",
              "--include=" + ",".join(IMAGE_PACKAGES), SUITE, str(rootfs), mirror], timeout=1800)

        # The apt repository: everything the packages need beyond the image, fetched with the
        # image's own apt so that exactly the missing dependencies are downloaded.
        write_file(rootfs / "etc/apt/sources.list", f"deb {mirror} {SUITE} main\n")
        step(["chroot", str(rootfs), "apt-get", "clean"])  # debootstrap leaves its own .debs there
        step(["chroot", str(rootfs), "apt-get", "update"])
        step(["chroot", str(rootfs), "apt-get", "install", "--download-only", "-y",
              *APT_REPO_PACKAGES])
        repo = partial / "apt-repo"
        repo.mkdir()
        archives = rootfs / "var/cache/apt/archives"
        debs = sorted(archives.glob("*.deb"))
        if not debs:
            raise LabError(f"apt downloaded no packages for {APT_REPO_PACKAGES}; see {build_log}")
        for deb in debs:
            shutil.move(str(deb), repo / deb.name)
        packages = run(["apt-ftparchive", "packages", "."], env=_c_env(), cwd=repo, timeout=120).stdout
        write_file(repo / "Packages", packages)
        release = run(["apt-ftparchive", "release", "."], env=_c_env(), cwd=repo, timeout=120).stdout
        write_file(repo / "Release", release)

        # Image settings: only the lab's apt source, SSH by key, no DNS, empty machine-id.
        for path in IMAGE_REMOVE:
            (rootfs / path.lstrip("/")).unlink(missing_ok=True)
        for path, content in IMAGE_FILES.items():
            write_file(rootfs / path.lstrip("/"), content)
        step(["chroot", str(rootfs), "apt-get", "clean"])
        lists = rootfs / "var/lib/apt/lists"
        for entry in lists.iterdir():
            if entry.is_file():
                entry.unlink()
        write_file(rootfs / "etc/machine-id", "", mode=0o444)
        for required in ("usr/sbin/sshd", "usr/bin/python3", "usr/lib/python3/dist-packages/apt",
                         "usr/sbin/update-ca-certificates", "lib/systemd/systemd"):
            if not (rootfs / required).exists():
                raise LabError(f"image build is missing /{required}; see {build_log}")

        info = {"recipe": self.recipe, "hash": self.hash, "mirror": mirror,
                "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": round(time.monotonic() - started, 1),
                "apt_repo_debs": [deb.name for deb in debs]}
        write_file(partial / "image.json", json.dumps(info, indent=2) + "\n")
        if self.dir.exists():
            _remove_tree(self.dir)
        partial.rename(self.dir)
        log(f"Pi image {self.hash} built in {info['seconds']} s ({len(debs)} packages in the apt repository)")


def _c_env() -> dict:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _remove_tree(path: Path) -> None:
    if any(is_mountpoint(p) for p in [path, *path.glob("*")] if p.is_dir()):
        raise LabError(f"{path} has a mount point inside; unmount it before removing")
    shutil.rmtree(path)


# --- per-lab layer ----------------------------------------------------------------------------

# Raised whenever ensure_lab_layer writes something new, so existing labs rebuild their layer.
LAYER_VERSION = 2
# systemd in the Pis runs on the host's cgroup v1 hierarchy, where it cannot start a service a
# second time ("Failed to attach to cgroup", status 219/CGROUP). systemd-timedated, which D-Bus
# starts on demand and stops after 30 s idle, then makes every timedatectl call wait about 25 s
# for a reply. Masked, timedatectl fails at once, as on a system without the service.
MASKED_UNITS = ("systemd-timedated.service",)


def layer_fingerprint(image: Image, server_ca: Path, ssh_public_key: Path) -> dict:
    return {
        "version": LAYER_VERSION,
        "image": image.hash,
        "server_ca_sha256": hashlib.sha256(server_ca.read_bytes()).hexdigest(),
        "ssh_public_key": ssh_public_key.read_text().strip(),
    }


def ensure_lab_layer(image: Image, state: StatePaths, pis_running: bool) -> Path:
    """Build the overlay layer with the lab CA, root's authorized_keys and MASKED_UNITS, shared by all Pis.

    The CA is installed by the image's own update-ca-certificates, run in a chroot of a
    temporary overlay mount with the image below and this layer on top. The trust store then
    looks exactly as on a machine where an administrator installed the CA.
    """
    layer = state.lab_layer
    marker = layer.with_name(layer.name + ".json")
    expected = layer_fingerprint(image, state.pki_file("server-ca.crt"), state.ssh_key.with_suffix(".pub"))
    if marker.exists() and layer.is_dir():
        if json.loads(marker.read_text()) == expected:
            return layer
    if pis_running:
        raise LabError("the lab CA, the SSH key or the image changed while Pis are running; "
                       "run labctl down first")
    log("preparing the lab layer of the Pi image (lab CA, SSH key)")
    work = layer.with_name(layer.name + ".work")
    mnt = layer.with_name(layer.name + ".mnt")
    for path in (layer, work, mnt):
        if path.exists():
            _remove_tree(path)
        path.mkdir(parents=True)
    marker.unlink(missing_ok=True)
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={image.rootfs},upperdir={layer},workdir={work}", str(mnt)])
    try:
        ca_target = mnt / "usr/local/share/ca-certificates" / LAB_CA_NAME
        write_file(ca_target, state.pki_file("server-ca.crt").read_text())
        run(["chroot", str(mnt), "update-ca-certificates"], timeout=120)
        ssh_dir = mnt / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(ssh_dir, 0o700)
        write_file(ssh_dir / "authorized_keys", state.ssh_key.with_suffix(".pub").read_text(), mode=0o600)
        for unit in MASKED_UNITS:
            (mnt / "etc/systemd/system" / unit).symlink_to("/dev/null")
    finally:
        run(["umount", str(mnt)])
    shutil.rmtree(work)
    mnt.rmdir()
    write_file(marker, json.dumps(expected, indent=2) + "\n")
    return layer
