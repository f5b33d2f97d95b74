"""Helpers shared by the TestClient tests of the Ogiri pages (the fixtures are in ``conftest.py``):
the emulator stack's parameters, Airflow JWTs for a role, and a small test image."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image

PARAMS = {"EnvironmentName": "test", "BucketName": "ogiri-ui-test", "TableName": "ogiri-ui-test-captions"}


def token(role: str | None, username: str = "someone") -> str:
    """A JWT signed by Airflow's auth manager (SimpleAuthManager) for a user of ``role`` (None: no role)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))


def viewer(client: TestClient) -> TestClient:
    """``client`` logged in as a viewer (the UI's ``_token`` cookie)."""
    client.cookies.set("_token", token("viewer"))
    return client


def image_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (48, 32)) -> bytes:
    """A plain-colour PNG (what a caption row's image URL serves)."""
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()
