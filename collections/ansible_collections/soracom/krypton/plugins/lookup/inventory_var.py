# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: inventory_var
short_description: Read an inventory variable where only play variables are visible
version_added: 0.1.0
description:
  - Returns the value a variable has for the first host of a host pattern, read from the inventory sources of the run
    (C(ansible_inventory_sources)), together with the extra variables given with C(-e).
  - Ansible templates the play keywords C(serial) and C(max_fail_percentage) before any host is chosen, with the
    play's own variables and the extra variables only, so inventory variables such as those in C(group_vars/all)
    are undefined there. This lookup reads them from the inventory instead.
  - An extra variable with the same name wins, as it does elsewhere in Ansible.
author:
  - soracom.krypton contributors (@soracom-krypton)
options:
  _terms:
    description: Names of the variables to read.
    required: true
    type: list
    elements: str
  hosts:
    description:
      - Host pattern whose first host's variables are read, for example the group the play runs on.
      - When the pattern matches no host, the variables are read for the implicit C(localhost), which sees
        C(group_vars/all).
    type: str
    default: all
  default:
    description: Value returned for a variable that is not set.
    type: raw
notes:
  - The lookup parses the inventory sources again, so a dynamic inventory plugin or script runs once more.
  - Values are returned as the inventory stores them. A value that is a Jinja2 template is not templated.
seealso:
  - name: Controlling playbook execution, serial
    description: How C(serial) and C(max_fail_percentage) set batches and failure limits.
    link: https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_strategies.html
"""

EXAMPLES = r"""
- name: Roll out to the Pis in the batch sizes that the inventory sets
  hosts: pis
  serial: "{{ lookup('soracom.krypton.inventory_var', 'krypton_rollout_serial', hosts='pis', default=0) }}"
  tasks:
    - name: Show the batch
      ansible.builtin.debug:
        var: ansible_play_batch
"""

RETURN = r"""
_raw:
  description: The value of each variable, or O(default) for a variable that is not set.
  type: list
  elements: raw
"""

from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display
from ansible.vars.manager import VariableManager

display = Display()


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        sources = variables.get('ansible_inventory_sources') or []
        if isinstance(sources, str):
            sources = [sources]
        pattern = self.get_option('hosts')
        default = self.get_option('default')

        inventory = InventoryManager(loader=self._loader, sources=list(sources))
        try:
            hosts = inventory.get_hosts(pattern)
        except AnsibleError:
            # HOST_PATTERN_MISMATCH=error turns an unmatched pattern into an error.
            hosts = []
        hosts = hosts or inventory.get_hosts('localhost')
        if not hosts:
            raise AnsibleError('The host pattern %r matches no host in the inventory sources %s.'
                               % (pattern, ', '.join(sources) or '(none)'))
        variable_manager = VariableManager(loader=self._loader, inventory=inventory)
        try:
            host_vars = variable_manager.get_vars(host=hosts[0], include_hostvars=False)
        except AnsibleError as exc:
            # For example a vaulted group_vars file during --syntax-check without a vault password.
            display.warning('Could not read the variables of %s from the inventory, so %s get the default %r: %s'
                            % (hosts[0].name, ', '.join(terms), default, exc))
            return [default for dummy in terms]
        return [host_vars.get(term, default) for term in terms]
