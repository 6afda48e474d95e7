"""API-key hashing and the encryption of stored provider secrets."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

from control_plane.errors import SecretDecryptionError

API_KEY_PREFIX = "stimm_"


def new_api_key() -> str:
    """A fresh high-entropy API key (256 bits), recognisable by its prefix."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """What is stored of a key: a plain SHA-256 is enough for 256-bit random tokens."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters of a key, stored so people can tell their keys apart."""
    return key[: len(API_KEY_PREFIX) + 4]


class SecretBox:
    """Encrypts secrets at rest with Fernet (AES-128-CBC + HMAC-SHA256).

    The Fernet key is derived from ``STIMM_SECRET_KEY`` with SHA-256, so any long random
    string works as the setting.
    """

    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"stimm-secrets:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as e:
            raise SecretDecryptionError(
                "A stored secret cannot be decrypted: STIMM_SECRET_KEY changed since it was set"
            ) from e
