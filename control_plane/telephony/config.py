"""Telephony settings of the control plane (environment variables ``STIMM_SIP_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelephonySettings(BaseSettings):
    """Where outbound calls go (``POST /api/calls`` is off while the address is unset) and where
    livekit-sip answers inbound ones."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", env_ignore_empty=True)

    outbound_address: str = Field(default="", validation_alias="STIMM_SIP_OUTBOUND_ADDRESS")
    """The SIP provider or PBX that places outbound calls, ``host[:port]``."""
    outbound_number: str = Field(default="+10000000000", validation_alias="STIMM_SIP_FROM_NUMBER")
    """The caller id outbound calls present."""
    outbound_transport: str = Field(default="", validation_alias="STIMM_SIP_OUTBOUND_TRANSPORT")
    outbound_username: str = Field(default="", validation_alias="STIMM_SIP_OUTBOUND_USERNAME")
    outbound_password: SecretStr = Field(
        default=SecretStr(""), validation_alias="STIMM_SIP_OUTBOUND_PASSWORD"
    )
    sip_address: str = Field(default="", validation_alias="STIMM_SIP_ADDRESS")
    """``host:port`` where callers reach livekit-sip (shown in the console); empty: not said."""
    sip_health_url: str = Field(default="", validation_alias="STIMM_SIP_HEALTH_URL")
    """livekit-sip's health endpoint (its ``health_port``); empty: the status is unknown."""
    ringing_timeout_s: float = Field(
        default=30.0, ge=5.0, le=120.0, validation_alias="STIMM_SIP_RINGING_TIMEOUT"
    )
