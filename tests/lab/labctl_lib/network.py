# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Network namespaces of the lab, the Pis' ``ppp0`` links, and tilab's /etc/netns files.

tilab contains bridge br0 with 10.213.0.1/24 and has no default route. Pi N lives in namespace
tipiN, joined to br0 by a veth whose inner end is renamed ppp0 and carries
10.213.0.(10+N)/32 with peer 10.213.0.1, like a PPP link. The root namespace gets nothing.
Lab K >= 1 uses tilabK, tKpiN and 10.213.K.0/24 in the same way (see ``config.Lab``).
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from . import LabError
from .config import BRIDGE, Lab, PiSpec, gateway_hostnames
from .pki import subject_hash
from .sysutil import netns_exists, run

LAB_CA_BUNDLE_NAME = "soracom-krypton-lab-root-ca.pem"


def _ip(*args: str, check: bool = True):
    return run(["ip", *args], check=check, timeout=30)


def link_exists(netns: str, link: str) -> bool:
    return _ip("-n", netns, "link", "show", "dev", link, check=False).returncode == 0


def ensure_lab_netns(lab: Lab) -> None:
    """Create tilab with lo and br0 (10.213.0.1/24), or complete a partly created one."""
    netns = lab.netns
    if not netns_exists(netns):
        _ip("netns", "add", netns)
    _ip("-n", netns, "link", "set", "lo", "up")
    if not link_exists(netns, BRIDGE):
        _ip("-n", netns, "link", "add", BRIDGE, "type", "bridge")
    addresses = _ip("-n", netns, "-o", "-4", "addr", "show", "dev", BRIDGE).stdout
    if f"{lab.gateway_ip}/24" not in addresses:
        _ip("-n", netns, "addr", "add", f"{lab.gateway_ip}/24", "dev", BRIDGE)
    _ip("-n", netns, "link", "set", BRIDGE, "up")


def pi_netns_ready(pi: PiSpec) -> bool:
    return (netns_exists(pi.netns) and link_exists(pi.netns, "ppp0")
            and link_exists(pi.lab.netns, pi.host_veth))


def ensure_pi_netns(pi: PiSpec) -> None:
    """Create tipiN with ppp0 (fixed MAC), its address, peer route and default route."""
    if pi_netns_ready(pi):
        set_link_up(pi)
        return
    delete_pi_netns(pi)
    _ip("netns", "add", pi.netns)
    _ip("-n", pi.netns, "link", "set", "lo", "up")
    _ip("link", "add", pi.host_veth, "netns", pi.lab.netns, "type", "veth",
        "peer", "name", "ppp0", "netns", pi.netns, "address", pi.mac)
    _ip("-n", pi.lab.netns, "link", "set", pi.host_veth, "master", BRIDGE, "up")
    set_link_up(pi)


def set_link_up(pi: PiSpec) -> None:
    """Bring ppp0 up and restore its address and default route, which link-down removes."""
    if not link_exists(pi.netns, "ppp0"):
        raise LabError(f"{pi.name} has no ppp0 in namespace {pi.netns} (run labctl pi-up {pi.n})")
    gateway = pi.lab.gateway_ip
    addresses = _ip("-n", pi.netns, "-o", "-4", "addr", "show", "dev", "ppp0").stdout
    if f"inet {pi.ip} peer {gateway}/32" not in addresses:
        _ip("-n", pi.netns, "addr", "replace", f"{pi.ip}/32", "peer", f"{gateway}/32", "dev", "ppp0")
    _ip("-n", pi.netns, "link", "set", "ppp0", "up")
    _ip("-n", pi.netns, "route", "replace", "default", "dev", "ppp0")


def set_link_down(pi: PiSpec) -> None:
    """Set ppp0 down inside tipiN; the kernel then drops its routes, as when PPP hangs up."""
    if not link_exists(pi.netns, "ppp0"):
        raise LabError(f"{pi.name} has no ppp0 in namespace {pi.netns} (run labctl pi-up {pi.n})")
    _ip("-n", pi.netns, "link", "set", "ppp0", "down")


def delete_pi_netns(pi: PiSpec) -> None:
    if netns_exists(pi.lab.netns) and link_exists(pi.lab.netns, pi.host_veth):
        _ip("-n", pi.lab.netns, "link", "del", pi.host_veth, check=False)
    if netns_exists(pi.netns):
        _ip("netns", "del", pi.netns)


def delete_lab_netns(lab: Lab) -> None:
    if netns_exists(lab.netns):
        _ip("netns", "del", lab.netns)


def netns_pids(name: str) -> list[int]:
    if not netns_exists(name):
        return []
    output = _ip("netns", "pids", name, check=False).stdout
    return [int(pid) for pid in output.split() if pid.isdigit()]


# --- /etc/netns/tilab[K] -----------------------------------------------------------------------

def hosts_file(gateway: str, pis: list[PiSpec], self_name: str | None = None,
               self_ip: str | None = None) -> str:
    """Render an /etc/hosts for tilab (no ``self_name``) or for one Pi."""
    lines = ["# soracom.krypton lab: these names resolve to the lab only.",
             "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if self_name:
        lines.append(f"{self_ip}\t{self_name}")
    lines.append(f"{gateway}\t" + " ".join(gateway_hostnames()))
    if not self_name:
        lines += [f"{pi.ip}\t{pi.name}" for pi in pis]
    return "\n".join(lines) + "\n"


def write_netns_etc(lab: Lab, pis: list[PiSpec], server_ca: Path) -> None:
    """Write the hosts, resolv.conf and ssl directory that ``ip netns exec tilab`` bind-mounts.

    They go to ``lab.netns_etc``: /etc/netns/tilab for lab 0, /etc/netns/tilabK for lab K.

    ssl is a copy of /etc/ssl with the lab CA appended to certs/ca-certificates.crt and
    linked under its subject hash, so CAfile and CApath users in tilab both trust it.
    Files are rewritten in place: processes that run in tilab keep their bind mounts, and a
    replaced directory would appear empty to them.
    """
    netns_etc = lab.netns_etc
    netns_etc.mkdir(parents=True, exist_ok=True)
    _write_if_changed(netns_etc / "hosts", hosts_file(lab.gateway_ip, pis))
    _write_if_changed(netns_etc / "resolv.conf",
                      "# soracom.krypton lab: no DNS server, names are in /etc/hosts\nnameserver 127.0.0.1\n")

    ssl_dir = netns_etc / "ssl"
    if not ssl_dir.is_dir():
        staging = _ssl_staging_dir(lab)
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree("/etc/ssl", staging, symlinks=True)
        staging.rename(ssl_dir)
    certs = ssl_dir / "certs"
    ca_pem = server_ca.read_text()
    host_bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_text()
    separator = "" if host_bundle.endswith("\n") else "\n"
    _write_if_changed(certs / "ca-certificates.crt", host_bundle + separator + ca_pem)
    _write_if_changed(certs / LAB_CA_BUNDLE_NAME, ca_pem)
    ca_hash = subject_hash(server_ca)
    for suffix in range(10):
        hash_link = certs / f"{ca_hash}.{suffix}"
        if hash_link.is_symlink() and hash_link.readlink() == Path(LAB_CA_BUNDLE_NAME):
            break
        if not hash_link.exists() and not hash_link.is_symlink():
            hash_link.symlink_to(LAB_CA_BUNDLE_NAME)
            break


def _write_if_changed(path: Path, content: str) -> None:
    """Write ``content`` into the existing file (same inode) unless it already matches."""
    if path.exists() and path.read_text() == content:
        return
    with open(path, "w") as handle:
        handle.write(content)


def _ssl_staging_dir(lab: Lab) -> Path:
    # Staged outside /etc/netns/<netns>: ip netns exec bind-mounts every entry found there.
    return lab.netns_etc.parent / f".{lab.netns}-ssl.new"


def remove_netns_etc(lab: Lab) -> None:
    """Delete /etc/netns/<netns> of ``lab``, and /etc/netns itself once no lab uses it."""
    for path in (lab.netns_etc, _ssl_staging_dir(lab)):
        if path.exists():
            shutil.rmtree(path)
    parent = lab.netns_etc.parent
    if parent.exists() and not any(parent.iterdir()):
        # If another lab creates its directory here at the same moment, rmdir fails and /etc/netns stays.
        with contextlib.suppress(OSError):
            parent.rmdir()
