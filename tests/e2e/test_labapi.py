"""Tests of the lab helpers that other end-to-end tests rely on. Run inside the lab (`make e2e`)."""
from __future__ import annotations

import subprocess

import labapi


def test_reset_lab_brings_links_up(lab):
    """A test that ends with a Pi's link down does not break the next test's reset."""
    pi = lab["pis"][-1]
    down = subprocess.run([str(labapi.REPO / "tests" / "lab" / "labctl"), "link-down", str(pi["n"])],
                          text=True, capture_output=True, timeout=60, check=False)
    assert down.returncode == 0, down.stderr
    assert labapi.ssh(pi, "true", timeout=20).returncode != 0

    labapi.reset_lab()

    state = subprocess.run(["ip", "-n", pi["netns"], "-o", "link", "show", "dev", "ppp0"], text=True,
                           capture_output=True, timeout=10, check=True)
    assert "state UP" in state.stdout
    assert labapi.ssh(pi, "test ! -e /etc/soracom/krypton").returncode == 0
