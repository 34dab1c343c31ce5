#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: aws_iot_endpoint_info
short_description: Look up the AWS IoT Core data endpoint of an account
version_added: 0.1.0
description:
  - Returns the host name devices connect to over MQTTS, as AWS IoT Core's DescribeEndpoint API returns it
    for the account and region.
  - The SoracomKrypton configuration of a SIM group needs this host, and Krypton hands it to every device.
author:
  - soracom.krypton contributors (@soracom-krypton)
extends_documentation_fragment:
  - soracom.krypton.aws
  - soracom.krypton.attributes
  - soracom.krypton.attributes.INFO_MODULE
  - soracom.krypton.attributes.ACTION_GROUP_AWS
options:
  endpoint_type:
    description:
      - The endpoint type.
      - V(iot:Data-ATS) is the endpoint whose server certificate chains to Amazon Root CA 1, the one
        devices should use. V(iot:Data) is the legacy endpoint signed by a Symantec (VeriSign) root.
      - V(iot:CredentialProvider) and V(iot:Jobs) are the endpoints of those services.
    type: str
    choices: [iot:Data-ATS, iot:Data, iot:CredentialProvider, iot:Jobs]
    default: iot:Data-ATS
notes:
  - A device that connects to the legacy endpoint with Amazon Root CA 1, or to the ATS endpoint with the
    legacy root, fails TLS with C(unable to get local issuer certificate).
seealso:
  - module: soracom.krypton.soracom_krypton_config
  - name: AWS IoT Core device data endpoints
    description: The endpoint types and the root CA each one needs.
    link: https://docs.aws.amazon.com/iot/latest/developerguide/iot-connect-devices.html
"""

EXAMPLES = r"""
# AWS credentials come from the environment or from module_defaults for
# group/soracom.krypton.aws in these examples.

- name: Look up the ATS data endpoint
  soracom.krypton.aws_iot_endpoint_info:
    region: ap-northeast-1
  register: iot_endpoint

- name: Show it
  ansible.builtin.debug:
    msg: "Devices connect to {{ iot_endpoint.endpoint }}:8883"
"""

RETURN = r"""
endpoint:
  description: Host name of the endpoint, without scheme or port.
  returned: success
  type: str
  sample: a1b2c3d4e5f6g7-ats.iot.ap-northeast-1.amazonaws.com
endpoint_type:
  description: The endpoint type that was looked up.
  returned: success
  type: str
  sample: iot:Data-ATS
region:
  description: The region of the endpoint.
  returned: success
  type: str
  sample: ap-northeast-1
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._aws import (
    AwsError,
    aws_argument_spec,
    call,
    client_from_module,
)


def main():
    argument_spec = aws_argument_spec()
    argument_spec.update(
        endpoint_type=dict(
            type="str",
            default="iot:Data-ATS",
            choices=["iot:Data-ATS", "iot:Data", "iot:CredentialProvider", "iot:Jobs"],
        ),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    endpoint_type = module.params["endpoint_type"]

    client = client_from_module(module, "iot")
    try:
        response = call(client, "describe_endpoint", endpointType=endpoint_type)
    except AwsError as e:
        module.fail_json(**e.fail_kwargs())

    module.exit_json(
        changed=False,
        endpoint=response["endpointAddress"],
        endpoint_type=endpoint_type,
        region=client.meta.region_name,
    )


if __name__ == "__main__":
    main()
