"""Feast on a real repo in a temp folder: apply, point-in-time sets, materialize, lookup."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from feast.infra.provider import get_provider
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.repo_operations import get_repo_files, parse_repo
from feast.type_map import feast_value_type_to_python_type
from typer.testing import CliRunner

import warehouse
from features import (
    FeatureSettings,
    OnlineFeatures,
    apply_repo,
    build_snapshots,
    feature_names,
    freshness,
    materialize,
    open_store,
    registered_offline,
    service_features,
    snapshot_dates,
    training_set,
)
from features.erasure import erase_online
from features.store import REPO_DIR, repo_config
from pipelines.config import Settings

JAN, FEB, MAR, APR = (datetime(2025, m, 1) for m in (1, 2, 3, 4))
SETTINGS = FeatureSettings()


def add_orders(con: duckdb.DuckDBPyConnection, orders: list[tuple[str, str, str, float]]) -> None:
    """(order_id, customer_id, ordered_at, amount): an online order and its identity link."""
    for n, (key, customer, at, amount) in enumerate(orders):
        con.execute(
            "INSERT INTO raw_orders (order_id, channel, ordered_at, amount, _source, _file, "
            "_row_number, _loaded_at) VALUES (?, 'online', ?, ?, 'orders', 'test', ?, now())",
            [key, at, amount, n],
        )
        con.execute("INSERT INTO identity_map VALUES ('orders', ?, ?)", [key, customer])


@pytest.fixture
def warehouse_con(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Orders only (other sources empty): c1 orders monthly, c2 once in February."""
    con = warehouse.connect(settings.paths.warehouse)
    con.execute(
        "CREATE TABLE identity_map (source VARCHAR, record_key VARCHAR, customer_id VARCHAR)"
    )
    con.execute(
        "CREATE TABLE profiles (customer_id VARCHAR, city VARCHAR, date_of_birth DATE, "
        "consent_email BOOLEAN, consent_sms BOOLEAN, consent_ads BOOLEAN)"
    )
    add_orders(
        con,
        [
            ("o1", "c1", "2024-12-10", 10.0),
            ("o2", "c1", "2025-01-10", 20.0),
            ("o3", "c1", "2025-02-10", 40.0),  # planted after the February cutoff
            ("o4", "c2", "2025-02-20", 5.0),
        ],
    )
    yield con
    con.close()


@pytest.fixture
def store(warehouse_con: duckdb.DuckDBPyConnection, settings: Settings):
    feast_dir = settings.paths.feast
    build_snapshots(warehouse_con, as_of=[JAN, FEB, MAR], feast_dir=feast_dir, settings=SETTINGS)
    store = open_store(feast_dir=feast_dir, settings=SETTINGS)
    apply_repo(store, feast_dir=feast_dir, settings=SETTINGS)
    return store


def test_training_set_is_point_in_time(store) -> None:
    entities = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c2", "nobody", "c1", "c1"],
            "event_timestamp": [
                datetime(2025, 2, 15),  # sees the Feb 1 snapshot: o3 (Feb 10) must not leak
                FEB,  # exactly at a snapshot: that snapshot, built from data before it
                datetime(2024, 11, 1),  # before any snapshot: nulls
                datetime(2025, 2, 25),  # c2's only order is after Feb 1: nulls
                MAR,  # unknown customer: nulls
                MAR + timedelta(days=SETTINGS.ttl_days + 1),  # snapshot older than the TTL
                datetime(2025, 3, 5, tzinfo=UTC),  # aware timestamps work too
            ],
            "label": [1, 2, 3, 4, 5, 6, 7],
        },
        index=[70, 60, 50, 40, 30, 20, 10],
    )
    out = training_set(store, entity_df=entities, service="ltv_v1")
    assert len(out) == len(entities)
    assert list(out.index) == list(entities.index)
    assert list(out["label"]) == [1, 2, 3, 4, 5, 6, 7]
    assert list(out.columns) == ["customer_id", "event_timestamp", "label"] + feature_names(
        service="ltv_v1", settings=SETTINGS
    )
    assert out["spend_total"].tolist()[:2] == [30.0, 30.0]  # o1 + o2, never o3's 40
    assert out["orders_total"].tolist()[:2] == [2, 2]
    assert out["spend_total"].iloc[6] == 70.0  # the March snapshot knows o3
    assert out.iloc[2:6]["spend_total"].isna().all()
    assert out.iloc[2:6]["days_since_last_order"].isna().all()
    assert out["sessions_30d"].isna().all()  # orders-only: web features are null, not missing


def test_training_set_rejects_bad_entity_frames(store) -> None:
    with pytest.raises(ValueError, match="event_timestamp"):
        training_set(store, entity_df=pd.DataFrame({"customer_id": ["c1"]}))
    bad = pd.DataFrame({"customer_id": ["c1"], "event_timestamp": [None]})
    with pytest.raises(ValueError, match="null event_timestamp"):
        training_set(store, entity_df=bad)
    bad = pd.DataFrame({"customer_id": [None], "event_timestamp": [FEB]})
    with pytest.raises(ValueError, match="1 null customer_id"):
        training_set(store, entity_df=bad)
    empty = training_set(store, entity_df=pd.DataFrame(columns=["customer_id", "event_timestamp"]))
    assert empty.empty and "orders_total" in empty.columns


def test_materialize_full_then_incremental_and_look_up(
    store, warehouse_con: duckdb.DuckDBPyConnection, settings: Settings
) -> None:
    assert all(f.until is None for f in freshness(store))
    fresh = materialize(store, until=MAR)
    assert {f.until for f in fresh} == {datetime(2025, 3, 1, 0, 0, 1, tzinfo=UTC)}
    online = OnlineFeatures(store, service="churn_v1")
    assert online.names == service_features(store, "churn_v1")
    c1 = online.get("c1")
    assert (c1["orders_total"], c1["spend_total"], c1["days_since_last_order"]) == (3, 70.0, 19)
    assert c1["email_sends_30d"] is None
    assert set(online.get("nobody").values()) == {None}

    add_orders(warehouse_con, [("o5", "c1", "2025-03-20", 100.0)])
    build_snapshots(warehouse_con, as_of=[APR], feast_dir=settings.paths.feast, settings=SETTINGS)
    assert snapshot_dates(warehouse_con) == [JAN, FEB, MAR, APR]
    fresh = materialize(store, until=APR, incremental=True)
    assert {f.until for f in fresh} == {datetime(2025, 4, 1, 0, 0, 1, tzinfo=UTC)}
    assert all(f.at is not None for f in fresh)
    assert online.get("c1")["spend_total"] == 170.0
    many = online.get_many(["c2", "nobody", "c1"])
    assert many["customer_id"].tolist() == ["c2", "nobody", "c1"]
    assert many["orders_total"].tolist()[::2] == [1, 4]


def _feast_read(store, names: list[str], customer_ids: list[str]) -> tuple[np.ndarray, list]:
    """Feast's own `online_read` of every view, as floats (NaN for null), and per customer
    the oldest time among the views with a row."""
    provider = get_provider(store.config)
    keys = [
        EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=c)])
        for c in customer_ids
    ]
    values = np.full((len(keys), len(names)), np.nan)
    as_of = [None] * len(keys)
    for view in store.list_feature_views():
        for i, (stamp, found) in enumerate(
            provider.online_read(config=store.config, table=view, entity_keys=keys)
        ):
            for name, value in (found or {}).items():
                if name in names and value.WhichOneof("val") is not None:
                    values[i, names.index(name)] = feast_value_type_to_python_type(value)
            if stamp is not None and (as_of[i] is None or stamp < as_of[i]):
                as_of[i] = stamp
    return values, as_of


def test_vectors_are_feasts_values_and_the_cache_follows_the_store(
    store, warehouse_con: duckdb.DuckDBPyConnection, settings: Settings
) -> None:
    materialize(store, until=MAR)
    names = ["orders_total", "spend_total", "days_since_last_order", "email_sends_30d"]
    ids = ["c2", "nobody", "c1", "c2"]
    plain = OnlineFeatures(store, service="churn_v1")
    cached = OnlineFeatures(store, service="churn_v1", cache_rows=10)
    tiny = OnlineFeatures(store, service="churn_v1", cache_rows=2)  # fewer than asked for
    expected, as_of = _feast_read(store, names, ids)
    assert expected[2, :3].tolist() == [3, 70.0, 19] and np.isnan(expected[1]).all()
    for reader in (plain, cached, cached, tiny, tiny):  # second answers from memory
        found = reader.vectors(ids, names=names)
        assert found.names == names
        np.testing.assert_array_equal(found.values, expected)  # NaN where NaN
        assert found.as_of == as_of and as_of[1] is None and as_of[2] is not None
    every = plain.vectors(["c1"]).values[0]
    assert len(every) == len(plain.names) and every[plain.names.index("spend_total")] == 70.0
    with pytest.raises(KeyError, match="no_such_feature"):
        plain.vectors(ids, names=["no_such_feature"])

    add_orders(warehouse_con, [("o5", "c1", "2025-03-20", 100.0)])
    build_snapshots(warehouse_con, as_of=[APR], feast_dir=settings.paths.feast, settings=SETTINGS)
    materialize(store, until=APR, incremental=True)
    assert cached.vectors(["c1"], names=names).values[0, 1] == 170.0  # not the cached 70.0

    erase_online(online_db=settings.paths.feast / "online.db", customer_ids=["c1"])
    erased = cached.vectors(["c1", "c2"], names=names)
    assert np.isnan(erased.values[0]).all() and erased.as_of[0] is None
    np.testing.assert_array_equal(erased.values, _feast_read(store, names, ["c1", "c2"])[0])


def test_feast_cli_sees_the_declarations(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `feast -c features plan/apply` imports: one entity, five views, two services."""
    monkeypatch.chdir(REPO_DIR)
    monkeypatch.syspath_prepend(str(REPO_DIR))
    assert get_repo_files(REPO_DIR) == [REPO_DIR / "repo.py"]  # the rest is in .feastignore
    repo = parse_repo(REPO_DIR)
    assert [e.name for e in repo.entities if e.name != "__dummy"] == ["customer"]
    assert sorted(v.name for v in repo.feature_views) == [
        "customer_email_features",
        "customer_order_features",
        "customer_profile_features",
        "customer_support_features",
        "customer_web_features",
    ]
    assert sorted(s.name for s in repo.feature_services) == ["churn_v1", "ltv_v1"]
    default = (REPO_DIR.parent / "data" / "feast").resolve()
    assert {Path(s.path).parent for s in repo.data_sources} == {default}


def test_redis_is_a_settings_switch(tmp_path: Path) -> None:
    redis = FeatureSettings(online_store="redis", redis_connection_string="cache:6380")
    config = repo_config(feast_dir=tmp_path, settings=redis)
    assert config.online_config["type"] == "redis"
    assert config.online_config["connection_string"] == "cache:6380"
    sqlite = repo_config(feast_dir=tmp_path, settings=SETTINGS)
    assert sqlite.online_config == {"type": "sqlite", "path": str(tmp_path / "online.db")}
    assert sqlite.registry.path == str(tmp_path / "registry.db")


def test_cip_features_command(
    warehouse_con: duckdb.DuckDBPyConnection, settings: Settings, tmp_path: Path
) -> None:
    from pipelines.cli import app  # imports every command: only this test needs it

    warehouse_con.close()
    env = {"CIP_DATA_DIR": str(settings.data_dir), "CIP_CONFIG": str(tmp_path / "none.yaml")}
    runner = CliRunner()
    result = runner.invoke(app, ["features"], env=env)
    assert result.exit_code == 0, result.output
    assert "No source data for web, email, support" in result.output
    assert "feature views applied" in result.output
    again = runner.invoke(app, ["features", "--only-new"], env=env)
    assert again.exit_code == 0, again.output
    assert re.search(r"as-of dates computed\s+0\s", again.output)
    store = open_store(feast_dir=settings.paths.feast, settings=SETTINGS)
    assert OnlineFeatures(store, service="ltv_v1").get("c2")["orders_total"] == 1
    assert os.path.exists(settings.paths.feast / "online.db")
    empty = runner.invoke(app, ["features"], env=env | {"CIP_DATA_DIR": str(tmp_path / "empty")})
    assert empty.exit_code == 1
    assert "run `cip load` first" in " ".join(empty.output.split())


def test_a_moved_folder_keeps_the_sources_of_the_engine_that_applied_them(
    store, settings: Settings, tmp_path: Path
) -> None:
    """Applied for Spark's offline store (`engine: spark`), the repo of a moved data folder
    is re-pointed with Spark sources still, without Spark; the other engine is refused."""
    from pipelines.relocate import LOCATION_FILE, relocate

    assert registered_offline(store) == "duckdb"
    apply_repo(store, feast_dir=settings.paths.feast, settings=SETTINGS, offline="spark")
    assert registered_offline(store) == "spark"
    moved = tmp_path / "moved"
    shutil.move(settings.data_dir, moved)
    (moved / LOCATION_FILE).write_text(f"{settings.data_dir.resolve()}\n")
    assert relocate(settings.model_copy(update={"data_dir": moved})) == [
        f"Feast: offline sources moved from {settings.data_dir.resolve()}"
    ]
    again = open_store(feast_dir=moved / "feast", settings=SETTINGS)
    assert registered_offline(again) == "spark"
    assert all(v.batch_source.path.startswith(str(moved)) for v in again.list_feature_views())
    entities = pd.DataFrame({"customer_id": ["c1"], "event_timestamp": [FEB]})
    with pytest.raises(ValueError, match="applied with engine: spark and this run has engine"):
        training_set(again, entity_df=entities)
