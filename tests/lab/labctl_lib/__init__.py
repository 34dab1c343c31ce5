# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Library behind tests/lab/labctl: the local lab that replaces SORACOM, AWS and the Pis in tests.

Only the standard library is used, so labctl runs with the system's python3 as root.
"""
from __future__ import annotations


class LabError(Exception):
    """An error labctl reports to the user as one message, without a traceback."""
