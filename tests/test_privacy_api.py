"""The privacy routes of the BentoML service: `POST /privacy/forget`, `GET /privacy/export`.

The service is built on a private copy of the built universe (real models, Feast online
store, warehouse) and called through its ASGI app, as tests/test_serving.py does.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import duckdb
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from pipelines.config import Settings
from pipelines.relocate import relocate
from pipelines.services import PrivacyRequests, service_config
from serving.service import build_service

API_KEY = "privacy-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def data(built, small_universe: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("privacy_api") / "data"
    shutil.copytree(built.data_dir, root)
    settings = small_universe.model_copy(update={"data_dir": root})
    relocate(settings)
    return settings.model_copy(
        update={
            "serving": settings.serving.model_copy(
                update={"api_key": SecretStr(API_KEY), "reload_interval_seconds": 0}
            )
        }
    )


@pytest.fixture(scope="module")
def client(data: Settings) -> Iterator[TestClient]:
    service = build_service(config=service_config(data), privacy=PrivacyRequests(data))
    with TestClient(service.to_asgi(), raise_server_exceptions=False) as client:
        yield client


def _two_scored_emails(data: Settings) -> list[tuple[str, str]]:
    with duckdb.connect(str(data.paths.warehouse), read_only=True) as con:
        return con.execute(
            """SELECT customer_id, email FROM profiles JOIN current_scores USING (customer_id)
               WHERE email IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM customer_identifiers a JOIN customer_identifiers b
                   USING (id_type, id_value) WHERE a.customer_id = profiles.customer_id
                   AND b.customer_id <> profiles.customer_id)
               ORDER BY n_records DESC, customer_id LIMIT 2"""
        ).fetchall()


def test_privacy_routes_need_the_api_key(client: TestClient) -> None:
    assert client.get("/privacy/export", params={"email": "a@b.c"}).status_code == 401
    assert client.post("/privacy/forget", json={"email": "a@b.c"}).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "reason"),
    [
        ("get", "/privacy/export", {}, "name the person by"),
        ("get", "/privacy/export", {"params": {"email": "no-at-sign"}}, "must contain @"),
        ("post", "/privacy/forget", {"json": {}}, "name someone"),
        ("post", "/privacy/forget", {"json": {"phone": "12"}}, "at least 7 digits"),
        ("post", "/privacy/forget", {"json": {"identifiers": [{"kind": "fax", "value": "1"}]}},
         "identifiers.0.kind"),
        ("post", "/privacy/forget",
         {"content": b"not json", "headers": {"Content-Type": "application/json"}}, ""),
    ],
)  # fmt: skip
def test_bad_requests_get_a_400_with_the_reason(
    client: TestClient, method: str, path: str, kwargs: dict, reason: str
) -> None:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    response = getattr(client, method)(path, headers=headers, **kwargs)
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert "no-at-sign" not in response.text  # values are never echoed


def test_export_then_forget_over_http_leaves_everyone_else_as_before(
    client: TestClient, data: Settings
) -> None:
    (person, email), (other, other_email) = _two_scored_emails(data)
    exported = client.get("/privacy/export", params={"email": email}, headers=AUTH)
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert [c["customer_id"] for c in document["customers"]] == [person]
    assert document["customers"][0]["records"] and document["customers"][0]["scores"]
    before = client.post("/score", json={"email": other_email}, headers=AUTH).json()
    before.pop("scored_at")
    assert client.post("/score", json={"email": email}, headers=AUTH).status_code == 200

    forgotten = client.post("/privacy/forget", json={"email": email}, headers=AUTH)
    assert forgotten.status_code == 200, forgotten.text
    answer = forgotten.json()
    assert answer["status"] == "done" and answer["customers_erased"] == 1
    assert answer["rows_erased"] > 0 and answer["unmatched"] == []

    assert client.post("/score", json={"email": email}, headers=AUTH).status_code == 404
    gone = client.get("/privacy/export", params={"email": email}, headers=AUTH)
    assert gone.status_code == 200 and gone.json()["matched"] is False, gone.text
    assert gone.json()["customers"] == []
    after = client.post("/score", json={"email": other_email}, headers=AUTH).json()
    after.pop("scored_at")
    assert after == before and after["customer_id"] == other

    again = client.post("/privacy/forget", json={"email": email}, headers=AUTH).json()
    assert again["status"] == "done" and again["customers_erased"] == 0
    assert again["unmatched"] == [f"email …{email.split('@')[1]}"]
