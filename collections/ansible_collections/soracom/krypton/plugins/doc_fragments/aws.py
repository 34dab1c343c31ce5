# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """AWS connection options shared by the AWS modules of this collection."""

    DOCUMENTATION = r"""
options:
  region:
    description:
      - AWS region to send requests to, for example V(ap-northeast-1).
      - If not set, the value of the E(AWS_REGION) or E(AWS_DEFAULT_REGION) environment variable is used,
        then the region of the profile in the AWS configuration files.
      - The region is checked against botocore's list of regions before any request is sent,
        so a misspelt region fails with a list of valid names.
    type: str
  profile:
    description:
      - Named profile from the AWS shared configuration files (C(~/.aws/config) and C(~/.aws/credentials)).
      - If not set, the value of the E(AWS_PROFILE) environment variable is used.
      - When a profile is set, O(access_key), O(secret_key) and O(session_token) are ignored, including
        values taken from environment variables, and the profile's credentials are used.
    type: str
  access_key:
    description:
      - AWS access key ID.
      - If not set, the value of the E(AWS_ACCESS_KEY_ID) environment variable is used.
      - If neither this option nor O(profile) is set, boto3 looks for credentials in its usual places,
        such as the shared credentials file or an instance profile.
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - AWS secret access key that belongs to O(access_key).
      - If not set, the value of the E(AWS_SECRET_ACCESS_KEY) environment variable is used.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - AWS session token for temporary credentials.
      - If not set, the value of the E(AWS_SESSION_TOKEN) environment variable is used.
    type: str
  endpoint_url:
    description:
      - URL of the AWS API endpoint, for an AWS-compatible test server or a VPC endpoint.
      - If not set, the value of the E(AWS_ENDPOINT_URL) environment variable is used.
        Without either, boto3 picks the AWS endpoint of the service and region.
    type: str
notes:
  - Requests are retried by botocore in its C(adaptive) retry mode, up to 10 attempts,
    with a connect timeout of 10 seconds and a read timeout of 60 seconds.
requirements:
  - boto3
  - botocore
"""
