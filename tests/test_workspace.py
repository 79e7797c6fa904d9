"""The marketers' workspace over HTTP (Starlette's test client) on the hand-made segment
warehouse: sign-in, sessions, CSRF, roles, the builder's preview and save (the CLI's YAML and
errors), hostile input that never reaches SQL, members, CSV, run and send."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import duckdb
import pytest
import yaml
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from segments.definition import EXAMPLES_DIR, load_definitions
from segments.destinations import FileDestination
from segments.settings import SegmentSettings
from serving.workspace import UserStore, WorkspaceConfig, create_workspace

PASSWORDS = {"ed": "editor-password-1", "vi": "viewer-password-1"}
CART_NO_ORDER = {
    "name": "cart_no_order",
    "description": "Added to cart in the last 3 days and did not buy since.",
    "combine": "all",
    "kind_0": "event", "event_0": "cart_add", "count_0": "some", "within_0": "3",
    "kind_1": "event", "event_1": "purchase", "count_1": "none", "after_1": "cart_add",
}  # fmt: skip


@pytest.fixture
def world(segment_world: Path, tmp_path: Path) -> WorkspaceConfig:
    store = UserStore(path=tmp_path / "users.json")
    store.add(name="ed", password=PASSWORDS["ed"], role="editor")
    store.add(name="vi", password=PASSWORDS["vi"], role="viewer")
    return WorkspaceConfig(
        users_file=store.path,
        warehouse=segment_world,
        exports=tmp_path / "exports",
        definition_folders=[EXAMPLES_DIR, tmp_path / "saved"],
        save_folder=tmp_path / "saved",
        segments=SegmentSettings(destinations=[FileDestination(name="files", consent="email")]),
        phone_region="GB",
    )


def _client(config: WorkspaceConfig) -> TestClient:
    app = create_workspace(config=config, secret=SecretStr("test-secret"))
    return TestClient(Starlette(routes=[Mount("/app", app)]), base_url="http://testserver")


def _csrf(client: TestClient, path: str = "/app/login") -> str:
    page = client.get(path)
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def signed_in(config: WorkspaceConfig, user: str) -> tuple[TestClient, str]:
    client = _client(config)
    token = _csrf(client)
    answer = client.post(
        "/app/login",
        data={"csrf": token, "name": user, "password": PASSWORDS[user], "next": "/app/segments"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client, _csrf(client, "/app/builder")


def test_every_page_needs_a_session_and_a_wrong_password_is_refused_unlogged(
    world: WorkspaceConfig, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(world)
    for path in ("/app/", "/app/segments", "/app/builder", "/app/segments/cart_abandoners_3d",
                 "/app/segments/cart_abandoners_3d/members.csv"):  # fmt: skip
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and "/app/login?next=" in answer.headers["location"]
    hx = client.post("/app/builder/preview", headers={"HX-Request": "true"})
    assert hx.status_code == 401 and hx.headers["HX-Redirect"].startswith("/app/login")
    token = _csrf(client)
    with caplog.at_level(logging.DEBUG):
        wrong = client.post(
            "/app/login", data={"csrf": token, "name": "ed", "password": "guess-Secret-42"}
        )
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    assert "guess-Secret-42" not in caplog.text + wrong.text
    no_token = client.post("/app/login", data={"name": "ed", "password": PASSWORDS["ed"]})
    assert no_token.status_code == 403  # the login form is protected from CSRF too
    assert client.get("/app/segments", follow_redirects=False).status_code == 303  # still out


def test_the_session_cookie_is_signed_httponly_and_lax(world: WorkspaceConfig) -> None:
    client, _ = signed_in(world, "ed")
    cookie = next(c for c in client.cookies.jar if c.name == "cip_workspace")
    assert (
        cookie.has_nonstandard_attr("httponly") and cookie.get_nonstandard_attr("samesite") == "lax"
    )
    forged = _client(world)
    forged.cookies.set("cip_workspace", cookie.value[:-4] + "AAAA")
    assert forged.get("/app/segments", follow_redirects=False).status_code == 303
    page = client.get("/app/segments")
    assert page.status_code == 200 and "cart_abandoners_3d" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_preview_counts_what_the_sql_counts_and_saves_the_clis_yaml(
    world: WorkspaceConfig,
) -> None:
    client, token = signed_in(world, "ed")
    preview = client.post(
        "/app/builder/preview", data=CART_NO_ORDER, headers={"X-CSRF-Token": token}
    )
    assert preview.status_code == 200, preview.text
    shown = int(re.search(r'id="preview-size">([\d,]+)<', preview.text).group(1))
    # By hand: a cart add in the 3 days before the clock (2026-06-30 12:00), no order after it.
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        expected = con.execute("""
            WITH ev AS (SELECT m.customer_id, e.event, e.timestamp FROM raw_events e
                        JOIN identity_map m ON m.source = 'events' AND m.record_key = e.message_id),
                 cart AS (SELECT customer_id, max(timestamp) AS last_add FROM ev
                          WHERE event = 'Product Added'
                            AND timestamp > TIMESTAMP '2026-06-30 12:00' - INTERVAL 3 DAY
                          GROUP BY ALL),
                 bought AS (SELECT m.customer_id, o.ordered_at FROM raw_orders o
                            JOIN identity_map m ON m.source = 'orders' AND m.record_key = o.order_id
                            UNION ALL SELECT customer_id, timestamp FROM ev
                            WHERE event = 'Order Completed')
            SELECT count(*) FROM cart c WHERE NOT EXISTS (
                SELECT 1 FROM bought b WHERE b.customer_id = c.customer_id
                  AND b.ordered_at > (SELECT max(timestamp) FROM ev e WHERE
                                      e.customer_id = c.customer_id AND e.event = 'Product Added'))
        """).fetchone()[0]
    assert shown == expected == 2  # c05 and c08 (c06 and c09 bought since, c07 too long ago)
    assert "cart_no_order" in preview.text and "•••@example.com" in preview.text

    saved = client.post("/app/builder/save", data={**CART_NO_ORDER, "csrf": token},
                        follow_redirects=False)  # fmt: skip
    assert saved.status_code == 303, saved.text
    path = world.save_folder / "cart_no_order.yaml"
    written = yaml.safe_load(path.read_text())
    assert written["rule"] == {
        "all": [
            {"event": "cart_add", "within_days": 3},
            {"event": "purchase", "after_last": "cart_add", "max_count": 0},
        ]
    }
    names = {d.name for d in load_definitions(folders=world.definition_folders)}
    assert "cart_no_order" in names  # the CLI reads it
    again = client.post("/app/builder/save", data={**CART_NO_ORDER, "csrf": token})
    assert again.status_code == 422 and "already exists" in again.text


def test_the_builder_reports_the_clis_errors(world: WorkspaceConfig) -> None:
    client, token = signed_in(world, "ed")
    form = {
        "name": "Уход",  # not a valid segment name: the CLI's words, readable
        "kind_0": "field", "field_0": "scores.churn_decile", "op_0": ">=", "value_0": "many",
        "kind_1": "field", "field_1": "order.avg_order_valu", "op_1": ">", "value_1": "80",
    }  # fmt: skip
    answer = client.post("/app/builder/save", data={**form, "csrf": token})
    assert answer.status_code == 422
    assert "at name: String should match pattern &#39;^[a-z][a-z0-9_]*$&#39;" in answer.text
    form["name"] = "ok_name"
    answer = client.post("/app/builder/save", data={**form, "csrf": token})
    assert "field &#39;scores.churn_decile&#39; (number) &gt;=: needs a number value" in answer.text
    assert (
        "unknown field &#39;order.avg_order_valu&#39; (did you mean order.avg_order_value"
        in answer.text
    )
    assert not list(world.save_folder.glob("*.yaml"))


HOSTILE = [
    "x'); DROP TABLE profiles; --",
    'profile.first_name" = 1 OR 1=1 OR "',
    "1; DELETE FROM scores",
    "' OR '1'='1",
    "scores.churn_decile\"; ATTACH '/tmp/evil.db' AS evil; --",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_field_names_and_values_never_reach_sql(
    world: WorkspaceConfig, hostile: str
) -> None:
    client, token = signed_in(world, "ed")
    as_field = {"name": "probe", "kind_0": "field", "field_0": hostile, "op_0": "=", "value_0": "1"}
    answer = client.post("/app/builder/preview", data=as_field, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200 and "unknown field" in answer.text
    as_value = {"name": "probe", "kind_0": "field", "field_0": "profile.first_name",
                "op_0": "=", "value_0": hostile}  # fmt: skip
    answer = client.post("/app/builder/preview", data=as_value, headers={"X-CSRF-Token": token})
    assert re.search(r'id="preview-size">0<', answer.text), answer.text  # a value, matched
    as_event = {"name": "probe", "kind_0": "event", "event_0": hostile, "after_0": hostile}
    answer = client.post("/app/builder/preview", data=as_event, headers={"X-CSRF-Token": token})
    assert "unknown event" in answer.text
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM profiles").fetchone()[0] == 58
        assert con.execute("SELECT count(*) FROM scores").fetchone()[0] > 0


def test_a_viewer_previews_but_a_forged_post_cannot_save_run_or_send(
    world: WorkspaceConfig,
) -> None:
    client, token = signed_in(world, "vi")
    assert 'id="save"' not in client.get("/app/builder").text
    preview = client.post(
        "/app/builder/preview", data=CART_NO_ORDER, headers={"X-CSRF-Token": token}
    )
    assert preview.status_code == 200 and 'id="preview-size"' in preview.text
    for path in ("/app/builder/save", "/app/segments/run", "/app/segments/cart_abandoners_3d/send"):
        answer = client.post(path, data={**CART_NO_ORDER, "csrf": token})
        assert answer.status_code == 403 and "Only editors" in answer.text
    assert not world.save_folder.exists() or not list(world.save_folder.iterdir())
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        assert "segment_runs" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}


def test_an_editors_post_without_the_token_or_from_another_site_is_refused(
    world: WorkspaceConfig,
) -> None:
    client, token = signed_in(world, "ed")
    assert client.post("/app/segments/run", data={}).status_code == 403
    assert client.post("/app/segments/run", data={"csrf": "wrong"}).status_code == 403
    cross = client.post(
        "/app/segments/run", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        assert "segment_runs" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}


def test_run_then_members_csv_and_send_now_with_the_delivery_log(world: WorkspaceConfig) -> None:
    client, token = signed_in(world, "ed")
    ran = client.post("/app/segments/run", data={"csrf": token}, follow_redirects=False)
    assert ran.status_code == 303, ran.text
    listing = client.get("/app/segments")
    assert re.search(r"cart_abandoners_3d</a>.*?<td class=\"num\">2</td>", listing.text, re.S)
    assert "files (file)" in listing.text and "one data time: 2026-06-30 12:00" in listing.text
    page = client.get("/app/segments/at_risk_valuable")
    assert page.status_code == 200
    assert "Namec01" in page.text and "c•••@example.com" in page.text and "95%" in page.text
    assert "c01@example.com" not in page.text
    csv = client.get("/app/segments/at_risk_valuable/members.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("customer_id,name,contact,churn_probability")
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        members = con.execute(
            "SELECT count(*) FROM segment_membership WHERE segment = 'at_risk_valuable' "
            "AND exited_at IS NULL"
        ).fetchone()[0]
    assert len(lines) - 1 == members > 0
    sent = client.post("/app/segments/at_risk_valuable/send", data={"csrf": token})
    assert sent.status_code == 200 and "sent" in sent.text
    log = re.search(r'id="delivery-log".*?</table>', sent.text, re.S).group(0)
    assert "files (full)" in log and "Not sent yet" not in log
    assert list((world.exports).rglob("*.csv"))
    assert client.get("/app/segments/no_such_segment").status_code == 404


def test_cip_users_add_hashes_refuses_weak_input_and_first_login_prints_a_way_in(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setenv("CIP_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "ana", "--role", "editor", "--password-stdin"],
                          input="correct horse 1\n")  # fmt: skip
    assert added.exit_code == 0 and "correct horse" not in added.output
    stored = settings.paths.users.read_text()
    assert "correct horse" not in stored and "$argon2id$" in stored
    assert settings.paths.users.stat().st_mode & 0o077 == 0  # owner-only
    store = UserStore(path=settings.paths.users)
    assert store.authenticate(name="ana", password="correct horse 1").role == "editor"
    assert store.authenticate(name="ana", password="correct horse 2") is None
    assert store.authenticate(name="nobody", password="correct horse 1") is None
    for args, text in [
        (["ana"], "already exists"),
        (["bob", "--role", "admin"], "role must be one of viewer, editor"),
        (["bob"], "at least 8 characters"),
        (["bad name"], "no spaces"),
    ]:
        password = "short\n" if args == ["bob"] else "long enough 1\n"
        refused = runner.invoke(app, ["users", "add", *args, "--password-stdin"], input=password)
        assert refused.exit_code == 2 and text in refused.output, refused.output
    first = runner.invoke(app, ["users", "first-login"])
    assert "http://127.0.0.1:3000/app" in first.output and "sign in as one of: ana" in first.output


def test_first_login_creates_an_editor_once(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setenv("CIP_DATA_DIR", str(settings.data_dir))
    shown = CliRunner().invoke(app, ["users", "first-login"]).output
    password = re.search(r"password (\S+) \(shown once", shown.replace("\n", " ")).group(1)
    store = UserStore(path=settings.paths.users)
    assert store.authenticate(name="marketer", password=password).can_edit
    again = CliRunner().invoke(app, ["users", "first-login"]).output
    assert password not in again and "sign in as one of: marketer" in again
