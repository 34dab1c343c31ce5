# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lab stand-in for the SORACOM API, SORACOM Krypton and the Air metadata service.

``server.py`` beside this package runs four Flask apps over one shared
:class:`~soracom_emulator.state.LabState`: the SORACOM API, Krypton, the
metadata service and a lab-only admin API.
"""
from __future__ import annotations
