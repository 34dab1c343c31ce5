# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Attribute descriptions shared by every module; modules set only support and details."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without changing the target.
  diff_mode:
    description: Returns details of what changed, or would change in check mode, when run with C(--diff).
  idempotent:
    description: A second run with the same arguments changes nothing and returns RV(ignore:changed=false).
"""

    ACTION_GROUP_SORACOM = r"""
options: {}
attributes:
  action_group:
    description:
      - Takes part in the C(soracom.krypton.soracom) action group, so C(module_defaults) for
        C(group/soracom.krypton.soracom) sets its SORACOM connection options.
    support: full
    membership:
      - soracom.krypton.soracom
"""

    ACTION_GROUP_AWS = r"""
options: {}
attributes:
  action_group:
    description:
      - Takes part in the C(soracom.krypton.aws) action group, so C(module_defaults) for
        C(group/soracom.krypton.aws) sets its AWS connection options.
    support: full
    membership:
      - soracom.krypton.aws
"""

    FILES = r"""
options: {}
attributes:
  safe_file_operations:
    description: Writes files through a temporary file in the same directory that is moved into place, so a reader never sees a partly written file.
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: This module reads state only and runs normally in check mode.
  diff_mode:
    support: N/A
    details: This module changes nothing, so there is no diff.
  idempotent:
    support: full
"""
