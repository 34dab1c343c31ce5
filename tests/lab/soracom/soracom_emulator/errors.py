# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Error responses of the emulator: ``{"code": ..., "message": ...}`` in English or Japanese.

The SORACOM API returns errors as a JSON object with a ``code`` such as ``AUM0001`` and a
``message`` whose language the ``X-Soracom-Lang`` request header selects (``en`` or ``ja``).

Only two codes here are taken from a real client: ``AUM0001`` ("Token is required in the
request header") and ``AUM0002`` (failed ``/auth``), both quoted in the 2016 soracom-sdk-ios
sources.
NOTE: every ``LAB`` code is made up for the lab. Clients should branch on the HTTP status
and never on these codes.
"""
from __future__ import annotations

from dataclasses import dataclass

# key -> (HTTP status, code, English template, Japanese template). Status 0 means the caller passes it.
MESSAGES: dict[str, tuple[int, str, str, str]] = {
    # Authentication
    "token_required": (
        401, "AUM0001",
        "Token is required in the request header. Send X-Soracom-API-Key and X-Soracom-Token "
        "from POST /v1/auth.",
        "リクエストヘッダーにトークンが必要です。POST /v1/auth で取得した X-Soracom-API-Key と "
        "X-Soracom-Token を送信してください。",
    ),
    "auth_key_invalid": (
        401, "AUM0002",
        "Invalid authKeyId or authKey supplied.",
        "authKeyId または authKey が正しくありません。",
    ),
    "password_invalid": (
        401, "AUM0002",
        "Invalid username/password supplied.",
        "ユーザー名またはパスワードが正しくありません。",
    ),
    "token_invalid": (
        401, "LAB0001",
        "Invalid or expired API key or token. Call POST /v1/auth again.",
        "API キーまたは API トークンが無効か有効期限切れです。POST /v1/auth をもう一度呼び出してください。",
    ),
    # Request validation
    "body_required": (
        400, "LAB0100",
        "The request body is required.",
        "リクエストボディが必要です。",
    ),
    "content_type_invalid": (
        400, "LAB0101",
        "Content-Type must be application/json, got '{content_type}'.",
        "Content-Type は application/json である必要があります (受信: '{content_type}')。",
    ),
    "json_invalid": (
        400, "LAB0102",
        "The request body is not valid JSON: {detail}",
        "リクエストボディが JSON として不正です: {detail}",
    ),
    "body_type_invalid": (
        400, "LAB0103",
        "The request body must be a JSON {expected}.",
        "リクエストボディは JSON の {expected} である必要があります。",
    ),
    "field_missing": (
        400, "LAB0104",
        "Missing required field '{field}'.",
        "必須フィールド '{field}' がありません。",
    ),
    "field_type_invalid": (
        400, "LAB0105",
        "Field '{field}' must be {expected}.",
        "フィールド '{field}' は {expected} である必要があります。",
    ),
    "field_value_invalid": (
        400, "LAB0106",
        "Invalid value for '{field}': {detail}",
        "'{field}' の値が不正です: {detail}",
    ),
    "spec_request_invalid": (
        400, "LAB0110",
        "The request does not match the SORACOM API specification (operation {operation}): {detail}",
        "リクエストが SORACOM API 仕様に合致しません (オペレーション {operation}): {detail}",
    ),
    "query_invalid": (
        400, "LAB0107",
        "Invalid query parameter '{name}': {detail}",
        "クエリパラメーター '{name}' が不正です: {detail}",
    ),
    # Resources
    "http_error": (
        0, "LAB0400",
        "{description}",
        "{description}",
    ),
    "route_not_found": (
        404, "LAB0404",
        "No such API: {method} {path}",
        "該当する API がありません: {method} {path}",
    ),
    "method_not_allowed": (
        405, "LAB0405",
        "Method {method} is not allowed for {path}.",
        "{path} ではメソッド {method} を使用できません。",
    ),
    "group_not_found": (
        404, "LAB1001",
        "Group '{group_id}' does not exist.",
        "グループ '{group_id}' は存在しません。",
    ),
    "group_has_sims": (
        400, "LAB1002",
        "Group '{group_id}' still has {count} SIM(s). Remove them from the group first.",
        "グループ '{group_id}' には SIM が {count} 枚所属しています。先にグループから外してください。",
    ),
    "namespace_not_configured": (
        400, "LAB1003",
        "Group '{group_id}' has no configuration namespace '{namespace}'.",
        "グループ '{group_id}' に設定の名前空間 '{namespace}' はありません。",
    ),
    "config_parameter_not_found": (
        404, "LAB1004",
        "Group '{group_id}' has no parameter '{name}' in namespace '{namespace}'.",
        "グループ '{group_id}' の名前空間 '{namespace}' にパラメーター '{name}' はありません。",
    ),
    "tag_not_found": (
        404, "LAB1005",
        "Tag '{tag_name}' does not exist.",
        "タグ '{tag_name}' は存在しません。",
    ),
    "sim_not_found": (
        404, "LAB1010",
        "SIM '{sim_id}' does not exist.",
        "SIM '{sim_id}' は存在しません。",
    ),
    "subscriber_not_found": (
        404, "LAB1011",
        "Subscriber '{imsi}' does not exist.",
        "サブスクライバー '{imsi}' は存在しません。",
    ),
    "not_in_group": (
        404, "LAB1012",
        "'{resource}' does not belong to a group.",
        "'{resource}' はグループに所属していません。",
    ),
    "credential_not_found": (
        404, "LAB1020",
        "Credential set '{credentials_id}' does not exist.",
        "認証情報 '{credentials_id}' は存在しません。",
    ),
    "credential_exists": (
        400, "LAB1021",
        "Credential set '{credentials_id}' already exists. Use PUT to update it.",
        "認証情報 '{credentials_id}' は既に存在します。更新には PUT を使用してください。",
    ),
    "rate_limited": (
        429, "LAB0429",
        "Too many requests for {path}. Retry after {seconds} second(s).",
        "{path} へのリクエストが多すぎます。{seconds} 秒後に再試行してください。",
    ),
    "fault_injected": (
        0, "LAB0900",
        "The lab injected this HTTP {http_status} response.",
        "ラボが注入した HTTP {http_status} 応答です。",
    ),
    "fault_not_found": (
        404, "LAB0901",
        "No fault with id {fault_id} is waiting. GET /_lab/faults lists them.",
        "ID {fault_id} の待機中のフォールトはありません。GET /_lab/faults で一覧を確認してください。",
    ),
    "internal_error": (
        500, "LAB0500",
        "Internal error in the SORACOM lab emulator. See its log file.",
        "SORACOM ラボエミュレーターの内部エラーです。ログファイルを確認してください。",
    ),
    # Krypton
    "krypton_no_session": (
        403, "LAB2001",
        "The request did not come through a SORACOM Air session: no online SIM has the source "
        "address {address}.",
        "リクエストが SORACOM Air のセッションを経由していません: 送信元アドレス {address} の"
        "オンラインの SIM がありません。",
    ),
    "krypton_sim_inactive": (
        403, "LAB2002",
        "SIM {imsi} is not active (status: {sim_status}).",
        "SIM {imsi} はアクティブではありません (状態: {sim_status})。",
    ),
    "krypton_no_group": (
        403, "LAB2003",
        "SIM {imsi} does not belong to a group. Add it to a group whose SoracomKrypton "
        "configuration is enabled.",
        "SIM {imsi} はグループに所属していません。SoracomKrypton 設定が有効なグループに所属させてください。",
    ),
    "krypton_not_enabled": (
        403, "LAB2004",
        "SORACOM Krypton is not enabled for group '{group_id}' of SIM {imsi}: {detail}",
        "SIM {imsi} のグループ '{group_id}' では SORACOM Krypton が有効ではありません: {detail}",
    ),
    "krypton_config_incomplete": (
        400, "LAB2005",
        "The SoracomKrypton configuration of group '{group_id}' is incomplete: {detail}",
        "グループ '{group_id}' の SoracomKrypton 設定が不完全です: {detail}",
    ),
    "krypton_credential_invalid": (
        400, "LAB2006",
        "Credential set '{credentials_id}' named in group '{group_id}' {detail}",
        "グループ '{group_id}' で指定された認証情報 '{credentials_id}' が使用できません: {detail}",
    ),
    "krypton_aws_error": (
        0, "LAB2007",
        "AWS IoT {operation} failed: {aws_code}: {aws_message}",
        "AWS IoT の {operation} が失敗しました: {aws_code}: {aws_message}",
    ),
    "krypton_aws_unreachable": (
        502, "LAB2008",
        "AWS IoT {operation} failed: cannot reach the AWS endpoint: {detail}",
        "AWS IoT の {operation} が失敗しました: AWS エンドポイントに接続できません: {detail}",
    ),
    "krypton_aws_access_denied": (
        0, "LAB2009",
        "AWS IoT {operation} was denied for the IAM user of credential set '{credentials_id}': "
        "{aws_code}: {aws_message}. Give that user the missing permission.",
        "認証情報 '{credentials_id}' の IAM ユーザーに対して AWS IoT の {operation} が拒否されました: "
        "{aws_code}: {aws_message}。そのユーザーに不足している権限を付与してください。",
    ),
    "krypton_certificate_not_found": (
        404, "LAB2010",
        "Certificate '{certificate_id}' was not issued to SIM {imsi} by a bootstrap with skipCertificates.",
        "証明書 '{certificate_id}' は skipCertificates を指定したブートストラップで SIM {imsi} に発行されていません。",
    ),
    # Metadata service
    "metadata_no_session": (
        403, "LAB3001",
        "The request did not come through a SORACOM Air session: no online SIM has the source "
        "address {address}.",
        "リクエストが SORACOM Air のセッションを経由していません: 送信元アドレス {address} の"
        "オンラインの SIM がありません。",
    ),
    "metadata_disabled": (
        403, "LAB3002",
        "The metadata service is not enabled for SIM {imsi}: {detail}",
        "SIM {imsi} ではメタデータサービスが有効ではありません: {detail}",
    ),
    "metadata_read_only": (
        403, "LAB3003",
        "The metadata service of group '{group_id}' is read-only.",
        "グループ '{group_id}' のメタデータサービスは読み取り専用です。",
    ),
    "metadata_field_not_found": (
        404, "LAB3004",
        "The subscriber has no field '{field}'.",
        "サブスクライバーにフィールド '{field}' はありません。",
    ),
}


@dataclass(eq=False)
class ApiError(Exception):
    """An error response: HTTP status plus a catalogue key and the values for its template."""

    key: str
    params: dict
    status: int = 0
    headers: dict | None = None

    def __post_init__(self) -> None:
        if not self.status:
            self.status = MESSAGES[self.key][0]

    def body(self, language: str) -> dict:
        """Return the ``{"code", "message"}`` object in ``language`` (``ja`` or anything else for English)."""
        _, code, english, japanese = MESSAGES[self.key]
        template = japanese if language == "ja" else english
        return {"code": code, "message": template.format(**self.params)}

    def __str__(self) -> str:
        return self.body("en")["message"]


def api_error(key: str, status: int = 0, headers: dict | None = None, **params) -> ApiError:
    """Build an :class:`ApiError` for catalogue entry ``key``. A non-zero ``status`` overrides the catalogue's."""
    if key not in MESSAGES:
        raise KeyError(f"unknown error key {key!r}")
    return ApiError(key=key, params=params, status=status, headers=headers)
