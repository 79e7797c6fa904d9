"""The scoring and profile API over HTTP, on real artifacts built from the small universe.

The session builds the artifacts once with the pipeline's own stages (Splink resolution,
Feast snapshots and materialization, LightGBM champions in a SQLite MLflow registry,
`cip score`), then the tests call the BentoML service built by `build_service` through
`Service.to_asgi()`, and some through a real `cip serve` subprocess.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import mlflow
import pytest
from mlflow import MlflowClient
from pydantic import SecretStr
from starlette.testclient import TestClient

from pipelines.config import Settings
from pipelines.services import service_config
from pipelines.tracking import tracking_uri
from serving.service import build_service

TASKS = ("churn", "ltv", "orders")
API_KEY = "test-key-7f3a"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
FAST_MODELS = {"search": {"trials": 1}, "train_cutoffs": 3}


@contextmanager
def service_client(settings: Settings, **serving: object) -> Iterator[TestClient]:
    """The service built for `settings` (with `serving` settings changed), as an ASGI app
    with its lifespan running."""
    config = service_config(_test_settings(settings, **serving))
    with TestClient(
        build_service(config=config).to_asgi(), raise_server_exceptions=False
    ) as client:
        yield client


def _test_settings(settings: Settings, **serving: object) -> Settings:
    changes = {
        "api_key": SecretStr(API_KEY),
        "reload_interval_seconds": 0,
        "collector": settings.serving.collector.model_copy(
            update={"write_keys": {"web": SecretStr("write-key-1")}}
        ),
        **serving,
    }
    return settings.model_copy(update={"serving": settings.serving.model_copy(update=changes)})


@pytest.fixture(scope="session")
def warehouse_copy(served: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built warehouse, for a data folder without models or features."""
    copy = tmp_path_factory.mktemp("bare") / "warehouse.duckdb"
    shutil.copy(served.paths.warehouse, copy)
    return copy


@pytest.fixture(scope="module")
def client(
    served: Settings, facts: dict[str, list[tuple]], warehouse_copy: Path
) -> Iterator[TestClient]:
    """The service on the built data folder (after `facts` and `warehouse_copy` are taken)."""
    with service_client(served) as client:
        yield client


def _score(client: TestClient, body: dict) -> dict:
    response = client.post("/score", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def test_live_scores_match_cip_score(client: TestClient, facts: dict[str, list[tuple]]) -> None:
    stored = facts["scores"][:15] + facts["scores"][-10:]  # with reasons first, then without
    assert len(stored) == 25
    with_reasons = 0
    for cid, churn, churn_decile, ltv, ltv_decile, churn_why, ltv_why, cv, lv, fs, n, ov in stored:
        live = _score(client, {"customer_id": cid, "reasons": True})
        assert live["customer_id"] == cid
        assert live["churn_probability"] == pytest.approx(churn, abs=1e-9)
        assert live["predicted_ltv"] == pytest.approx(ltv, rel=1e-9, abs=1e-9)
        assert (live["churn_decile"], live["ltv_decile"]) == (churn_decile, ltv_decile)
        assert (live["churn_model_version"], live["ltv_model_version"]) == (cv, lv)
        assert live["expected_orders"] == pytest.approx(n, rel=1e-9, abs=1e-9)
        assert live["orders_model_version"] == ov
        assert live["feature_service"] == fs
        for stored_reasons, task in ((churn_why, "churn"), (ltv_why, "ltv")):
            if stored_reasons is not None:  # `cip score` explains its top deciles only
                with_reasons += 1
                assert live[f"{task}_reasons"] == json.loads(stored_reasons)
        assert live["features_as_of"] is not None
    assert with_reasons > 0


def test_email_and_anonymous_id_reach_the_same_customer(
    client: TestClient, facts: dict[str, list[tuple]]
) -> None:
    cid, email, anonymous_id = facts["email_and_cookie"][0]
    by_email = _score(client, {"email": f"  {email.upper()} "})
    by_cookie = _score(client, {"anonymous_id": anonymous_id, "reasons": False})
    assert by_email["customer_id"] == by_cookie["customer_id"] == cid
    assert (by_email["matched_by"], by_cookie["matched_by"]) == ("email", "anonymous_id")
    assert by_email["churn_probability"] == by_cookie["churn_probability"]
    # reasons asked for: a list (empty when the champion is the label-free model, which has
    # no trees to explain); not asked for: none
    assert by_email["churn_reasons"] is not None and by_cookie["churn_reasons"] is None

    got = client.get("/profile", params={"email": email}, headers=AUTH).json()
    posted = client.post("/profile", json={"anonymous_id": anonymous_id}, headers=AUTH).json()
    assert got == {**posted, "matched_by": "email"}
    assert got["customer_id"] == cid and got["profile"]["customer_id"] == cid
    assert {"id_type": "anonymous_id", "id_value": anonymous_id} in got["identifiers"]
    assert email in got["profile"]["emails"]


def test_batch_scores_each_customer_and_reports_the_unknown(
    client: TestClient, facts: dict[str, list[tuple]]
) -> None:
    ids = [row[0] for row in facts["scores"][:3]]
    body = {
        "customers": [{"customer_id": ids[0]}, {"email": "nobody@example.org"}]
        + [{"customer_id": i} for i in ids[1:]]
        + [{"phone": "not a phone"}],
    }
    answer = client.post("/score_batch", json=body, headers=AUTH).json()
    assert (answer["scored"], answer["failed"]) == (3, 2)
    results = answer["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == [200, 404, 200, 200, 400]
    assert results[1]["error"] == "no customer with this email"
    assert results[4]["error"] == "phone is not a valid phone"
    assert [r["score"]["customer_id"] for r in results if r["score"]] == ids
    single = _score(client, {"customer_id": ids[1]})
    assert results[2]["score"]["churn_probability"] == single["churn_probability"]
    assert results[2]["score"]["churn_reasons"] is None  # batches skip reasons by default


def test_api_key_is_required_and_never_echoed(client: TestClient) -> None:
    body = {"customer_id": "x"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        for method, path in (("POST", "/score"), ("GET", "/profile"), ("GET", "/status")):
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json()["error"] and API_KEY not in response.text
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200
    assert client.get("/docs.json").status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/score", b'{"email": ', 400, "malformed JSON body"),
        ("/profile", b'{"email": ', 400, "malformed JSON body"),
        ("/score", b"{}", 400, "name the customer by one of customer_id, email"),
        ("/profile", b"{}", 400, "name the customer by one of customer_id, email"),
        ("/score", b'{"email": "not-an-email"}', 400, "email is not a valid email"),
        ("/score", b'{"email": "nobody@example.org"}', 404, "no customer with this email"),
        ("/score", b'{"customer_id": "c-does-not-exist"}', 404, "no customer with this"),
        ("/profile", b'{"phone": "+1 202 555 0000"}', 404, "no customer with this phone"),
        ("/score", b'{"email": 42}', 400, "string"),
        ("/score", b'{"mail": "a@b.com"}', 400, "xtra"),
        ("/score_batch", b'{"customers": []}', 400, "at least 1"),
        ("/score_batch", b'{"customers": [{"customer_id": "x"}]} x', 400, "malformed JSON"),
    ],
)
def test_bad_input_gets_a_4xx_saying_what_is_wrong(
    client: TestClient, path: str, body: bytes, status: int, message: str
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"]  # the one documented error shape
    assert message in response.json()["error"]
    assert "not-an-email" not in response.text  # submitted values are not echoed


def test_a_form_body_is_refused_with_415(client: TestClient) -> None:
    for kind in ("multipart/form-data; boundary=x", "application/x-www-form-urlencoded"):
        headers = {**AUTH, "Content-Type": kind}
        response = client.post("/score", content=b"customer_id=x", headers=headers)
        assert response.status_code == 415, response.text
        assert "send a JSON body" in response.json()["error"]


def test_batch_over_the_limit_is_refused(client: TestClient, served: Settings) -> None:
    limit = served.serving.batch_limit
    body = {"customers": [{"customer_id": "x"}] * (limit + 1)}
    response = client.post("/score_batch", json=body, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"] == f"{limit + 1} customers in one batch: the limit is {limit}"


def test_status_names_the_loaded_champions(
    client: TestClient, served: Settings, facts: dict[str, list[tuple]]
) -> None:
    status = client.get("/status", headers=AUTH).json()
    registry = MlflowClient(tracking_uri(served), registry_uri=tracking_uri(served))
    champions = {t: str(registry.get_model_version_by_alias(t, "champion").version) for t in TASKS}
    assert status["ready"] and status["problems"] == {}
    assert status["models"] == champions
    assert status["customers"] == facts["customers"][0][0]
    assert status["features_materialized_at"] is not None


@contextmanager
def _new_churn_champion(settings: Settings) -> Iterator[tuple[str, str]]:
    """Register the churn champion's model again as a new version and promote it; yields
    (old, new) versions and puts the old champion back afterwards."""
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)  # the logged model is looked up in the global store
    mlflow.set_registry_uri(uri)
    registry = MlflowClient(uri, registry_uri=uri)
    old = registry.get_model_version_by_alias("churn", "champion")
    new = registry.create_model_version("churn", old.source, run_id=old.run_id)
    registry.set_registered_model_alias("churn", "champion", new.version)
    try:
        yield str(old.version), str(new.version)
    finally:
        registry.set_registered_model_alias("churn", "champion", old.version)


def test_a_newly_promoted_champion_is_picked_up_on_reload(
    client: TestClient, served: Settings, facts: dict[str, list[tuple]]
) -> None:
    cid = facts["scores"][0][0]
    before = _score(client, {"customer_id": cid})["churn_model_version"]
    with _new_churn_champion(served) as (old, new):
        assert before == old
        assert _score(client, {"customer_id": cid})["churn_model_version"] == old  # not yet
        reloaded = client.post("/reload", headers=AUTH)
        assert reloaded.status_code == 200 and reloaded.json()["models"]["churn"] == new
        assert _score(client, {"customer_id": cid})["churn_model_version"] == new
    client.post("/reload", headers=AUTH)
    assert _score(client, {"customer_id": cid})["churn_model_version"] == old


def test_segments_appear_once_segment_membership_exists(
    client: TestClient, served: Settings, facts: dict[str, list[tuple]]
) -> None:
    cid = facts["scores"][0][0]
    assert _score(client, {"customer_id": cid})["segments"] == []  # no table: no segments
    con = duckdb.connect(str(served.paths.warehouse))
    try:
        con.execute(
            "CREATE TABLE segment_membership (segment VARCHAR, customer_id VARCHAR,"
            " entered_at TIMESTAMP, exited_at TIMESTAMP)"
        )
        con.execute(
            "INSERT INTO segment_membership VALUES ('vip', ?, now(), NULL),"
            " ('lapsed', ?, now() - INTERVAL 9 DAY, now())",
            [cid, cid],
        )
    finally:
        con.close()
    deadline = time.monotonic() + 20  # the collector's loader may hold the file a moment
    while _score(client, {"customer_id": cid})["segments"] != ["vip"]:
        assert time.monotonic() < deadline, "segment_membership was not picked up"
        assert client.post("/reload", headers=AUTH).status_code == 200
    profile = client.get("/profile", params={"customer_id": cid}, headers=AUTH).json()
    assert profile["segments"] == ["vip"]


def test_report_serves_the_latest_html_file(client: TestClient, served: Settings) -> None:
    exports = served.paths.exports
    for old in exports.glob("report*.html"):
        old.unlink()
    missing = client.get("/report", headers=AUTH)
    assert missing.status_code == 404 and "no HTML report" in missing.json()["error"]
    report = exports / "report.html"
    exports.mkdir(parents=True, exist_ok=True)
    report.write_text("<html><body>segments</body></html>")
    found = client.get("/report", headers=AUTH)
    assert found.url.path == "/exports/report.html"  # beside the files its links point at
    assert found.status_code == 200 and "text/html" in found.headers["content-type"]
    assert found.text == report.read_text()
    (exports / "files").mkdir(exist_ok=True)
    (exports / "files" / "likely_to_churn.csv").write_text("customer_id\ncus_1\n")
    download = client.get("/exports/files/likely_to_churn.csv", headers=AUTH)
    assert download.status_code == 200 and download.text == "customer_id\ncus_1\n"
    assert client.get("/exports/files/likely_to_churn.csv").status_code == 401
    assert client.get("/exports/../cip.yaml", headers=AUTH).status_code == 404


def test_openapi_documents_every_route_with_examples(client: TestClient) -> None:
    spec = client.get("/docs.json").json()
    paths = spec["paths"]
    assert {"post"} <= set(paths["/score"]) and {"post"} <= set(paths["/score_batch"])
    assert {"get", "post"} <= set(paths["/profile"])
    assert {"/status", "/reload", "/report", "/readyz", "/livez", "/login"} <= set(paths)
    schemas = spec["components"]["schemas"]
    assert any("example" in schema for schema in schemas.values())
    assert spec["info"]["title"] == "Customer intelligence platform"
    assert spec["info"]["version"] == "0.1.0"
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert set(paths["/score"]["post"]["responses"]) == {
        "200", "400", "401", "404", "413", "415", "503"
    }  # fmt: skip
    assert set(paths["/profile"]["get"]["responses"]) == {"200", "400", "401", "404", "503"}
    assert paths["/score"]["post"]["security"] == [{"apiKey": []}]
    assert paths["/livez"]["get"]["security"] == []
    collector = {f"/v1/{p}" for p in ("track", "identify", "page", "screen", "group", "alias")}
    assert collector | {"/v1/batch", "/v1/import", "/v1/t", "/v1/b"} <= set(paths)
    assert paths["/v1/batch"]["post"]["security"] == [{"writeKey": []}, {}]


def test_an_undocumented_method_gets_405_with_the_documented_ones(client: TestClient) -> None:
    for method, path, allow in (
        ("PUT", "/score", "POST"), ("DELETE", "/profile", "GET, HEAD, POST"),
        ("POST", "/status", "GET, HEAD"),
    ):  # fmt: skip
        response = client.request(method, path, headers=AUTH)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allow
        assert list(response.json()) == ["error"]


def test_collector_is_mounted_under_v1(client: TestClient) -> None:
    event = {"userId": "u-1", "event": "Viewed", "messageId": "m-serving-1"}
    assert client.post("/v1/track", json=event).status_code == 401
    accepted = client.post("/v1/track", json=event, auth=("write-key-1", ""))
    assert accepted.status_code == 200, accepted.text


# The tests below build a second service in this process.


def test_a_newly_promoted_champion_is_picked_up_by_the_periodic_check(
    served: Settings, facts: dict[str, list[tuple]]
) -> None:
    cid = facts["scores"][0][0]
    with (
        service_client(served, reload_interval_seconds=0.2) as client,
        _new_churn_champion(served) as (_, new),
    ):
        deadline = time.monotonic() + 20
        while client.get("/status", headers=AUTH).json()["models"]["churn"] != new:
            assert time.monotonic() < deadline, "the new champion was not picked up"
            time.sleep(0.2)
        assert _score(client, {"customer_id": cid})["churn_model_version"] == new


def test_missing_models_and_features_answer_503(
    served: Settings, facts: dict[str, list[tuple]], warehouse_copy: Path
) -> None:
    bare = served.model_copy(update={"data_dir": warehouse_copy.parent})
    email = facts["email_and_cookie"][0][1]
    with service_client(bare) as client:
        assert client.get("/readyz").status_code == 503
        response = client.post("/score", json={"email": email}, headers=AUTH)
        assert response.status_code == 503
        assert "run `cip train`" in response.json()["error"]
        assert "run `cip features`" in response.json()["error"]
        assert client.post("/profile", json={"email": email}, headers=AUTH).status_code == 200
        problems = client.get("/status", headers=AUTH).json()["problems"]
        assert set(problems) == {"models", "features"}
