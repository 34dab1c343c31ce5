# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tests of the inventory_var lookup against inventories written here."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader


def write_inventory(tmp_path):
    inventory = tmp_path / 'inventory'
    (inventory / 'group_vars' / 'all').mkdir(parents=True)
    (inventory / 'group_vars' / 'pis').mkdir(parents=True)
    (inventory / 'hosts.yml').write_text('all:\n  children:\n    pis:\n      hosts:\n        pi01: {}\n        pi02: {}\n')
    (inventory / 'group_vars' / 'all' / 'main.yml').write_text('krypton_rollout_serial: [1, "10%", "100%"]\n')
    (inventory / 'group_vars' / 'pis' / 'main.yml').write_text('krypton_rollout_max_fail_percentage: 20\n')
    return str(inventory)


def lookup(terms, sources, **kwargs):
    plugin = lookup_loader.get('soracom.krypton.inventory_var', loader=DataLoader(), templar=None)
    return plugin.run(terms, variables={'ansible_inventory_sources': sources}, **kwargs)


def test_reads_group_vars_all(tmp_path):
    assert lookup(['krypton_rollout_serial'], [write_inventory(tmp_path)], hosts='pis') == [[1, '10%', '100%']]


def test_reads_group_vars_of_pattern(tmp_path):
    assert lookup(['krypton_rollout_max_fail_percentage'], [write_inventory(tmp_path)], hosts='pis') == [20]


def test_default_for_unset_variable(tmp_path):
    assert lookup(['krypton_rollout_connect_timeout'], [write_inventory(tmp_path)], hosts='pis', default=30) == [30]


def test_unmatched_pattern_reads_localhost(tmp_path):
    assert lookup(['krypton_rollout_serial'], [write_inventory(tmp_path)], hosts='nothing') == [[1, '10%', '100%']]


def test_localhost_ignores_pis_group_vars(tmp_path):
    assert lookup(['krypton_rollout_max_fail_percentage'], [write_inventory(tmp_path)], hosts='nothing',
                  default=100) == [100]


def test_plugin_raises_without_hosts(monkeypatch, tmp_path):
    from ansible.inventory.manager import InventoryManager

    monkeypatch.setattr(InventoryManager, 'get_hosts', lambda self, pattern='all', **kwargs: [])
    with pytest.raises(AnsibleError, match='matches no host'):
        lookup(['krypton_rollout_serial'], [write_inventory(tmp_path)], hosts='pis')


def test_unreadable_vault_file_gives_default(tmp_path):
    inventory = write_inventory(tmp_path)
    vault = tmp_path / 'inventory' / 'group_vars' / 'all' / 'vault.yml'
    vault.write_text('$ANSIBLE_VAULT;1.1;AES256\n3132333435363738\n')
    assert lookup(['krypton_rollout_serial'], [inventory], hosts='pis', default=0) == [0]
