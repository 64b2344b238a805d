"""Every page under AppTest against a real store owner with seeded data: login, queue order, decisions, roles, SQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics import triage
from store.client import StoreClient
from store.engine import Store
from tests.app_harness import PASSWORD, ServingApi, app_as, point_app_at, user
from tests.app_seed import render_images, seed_demo
from tests.seeding import Seeded, seed_store
from xscreen.settings import Settings


def add_users(client: StoreClient) -> None:
    for name, role in (("ann", "officer"), ("bob", "officer"), ("sue", "supervisor"), ("ada", "analyst")):
        client.add_user(name, PASSWORD, role)  # type: ignore[arg-type]


@pytest.fixture
def serving(owner_client: StoreClient, settings: Settings, tmp_path: Path) -> Iterator[ServingApi]:
    """Serving's /v1 API up and healthy, so supervisors' pages show no banner unless a test makes one."""
    with ServingApi(settings, owner_client, tmp_path / "serving") as api:
        yield api


@pytest.fixture
def seeded(owner_client: StoreClient, settings: Settings, now: datetime, monkeypatch: pytest.MonkeyPatch,
           serving: ServingApi) -> Seeded:
    point_app_at(monkeypatch, settings)
    add_users(owner_client)
    return seed_store(owner_client, n_scans=120, seed=3, now=now)


def test_login_with_the_right_password_opens_triage(seeded: Seeded, now: datetime) -> None:
    at = app_as(None, now).run()
    at.text_input(key="login_user").input("ann")
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run()
    assert not at.exception
    assert at.title[0].value == "Live triage"


def test_login_with_a_wrong_password_is_refused(seeded: Seeded, now: datetime) -> None:
    at = app_as(None, now).run()
    at.text_input(key="login_user").input("ann")
    at.text_input(key="login_password").input("wrong-password-1")
    at.button(key="login_submit").click().run()
    assert at.error and "xs_session" not in at.session_state
    assert at.title[0].value.startswith("xscreen: sign in")


def test_page_opened_signed_out_asks_for_sign_in_then_shows_that_page(seeded: Seeded, now: datetime) -> None:
    at = app_as(None, now).run()
    at.switch_page("pages/drift.py").run()  # a bookmarked /drift, signed out
    assert not at.exception and at.title[0].value == "xscreen: sign in"
    assert "Drift & accuracy" in at.caption[0].value and not at.get("plotly_chart")
    at.text_input(key="login_user").input("sue")
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run()
    assert not at.exception and at.title[0].value == "Drift & accuracy"


def test_page_the_role_may_not_open_is_refused_after_sign_in(seeded: Seeded, now: datetime) -> None:
    at = app_as(None, now).run()
    at.switch_page("pages/models.py").run()  # an officer follows a supervisor's link
    at.text_input(key="login_user").input("ann")
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run()
    assert not at.exception and "may not open the models page" in at.error[0].value


def test_queue_is_highest_risk_first(seeded: Seeded, now: datetime, owner_client: StoreClient, store: Store) -> None:
    at = app_as(user("ann", "officer", now), now).run()
    assert not at.exception
    shown = at.dataframe[0].value
    expected = store.queue("ann", limit=50)
    assert shown["scan"].tolist() == expected["scan_id"].tolist() and len(shown) > 3
    assert expected["any_threat"].is_monotonic_decreasing


def test_queue_shows_the_true_backlog_a_readable_risk_and_the_age(
        seeded: Seeded, now: datetime, owner_client: StoreClient, monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    from datetime import timedelta

    monkeypatch.setenv("XSCREEN_APP__QUEUE_PAGE_SIZE", "5")
    at = app_as(user("ann", "officer", now + timedelta(minutes=12)), now + timedelta(minutes=12)).run()
    assert not at.exception
    backlog = len(store.queue("ann", limit=1000))
    assert backlog > 5 and at.caption[0].value.startswith(f"{backlog} items waiting, the 5 highest risk shown")
    shown, expected = at.dataframe[0].value, store.queue("ann", limit=5)
    assert shown["risk"].tolist() == [triage.risk_text(p) for p in expected["any_threat"]]
    assert all(r.endswith(" %") for r in shown["risk"]) and len(set(shown["risk"])) > 1
    received = [triage.as_utc(t) for t in expected["received_at"]]
    assert shown["age"].tolist() == [triage.age_text(t, now + timedelta(minutes=12)) for t in received]
    assert all(a.endswith(" ago") for a in shown["age"])
    at.button(key="triage_next").click().run()  # the viewer: the received time in full, and the age
    assert f"**Received** {received[0]:%Y-%m-%d %H:%M:%S} UTC ({shown['age'].iloc[0]})" in at.markdown[0].value


def test_refer_then_next_gives_the_officer_another_item_and_the_referral_to_others(
        seeded: Seeded, now: datetime, owner_client: StoreClient) -> None:
    at = app_as(user("ann", "officer", now), now).run()
    at.button(key="triage_next").click().run()
    referred = at.session_state["triage_current"]
    at.button(key="triage_refer").click().run()  # key 4
    assert not at.exception and "triage_current" not in at.session_state
    assert referred not in at.dataframe[0].value["scan"].tolist()
    at.button(key="triage_next").click().run()  # key N
    assert at.session_state["triage_current"] != referred
    bob = app_as(user("bob", "officer", now), now).run()  # another officer gets it, marked
    row = bob.dataframe[0].value.set_index("scan").loc[referred]
    assert row["note"] == "referred by ann"
    assert owner_client.get_scan(referred)["decisions"][-1]["decision"] == "refer"


def test_decision_is_stored_with_officer_and_time_and_leaves_the_queue(
        seeded: Seeded, now: datetime, owner_client: StoreClient, store: Store) -> None:
    at = app_as(user("ann", "officer", now), now).run()
    top = at.dataframe[0].value["scan"].iloc[0]
    at.button(key="triage_next").click().run()
    assert at.session_state["triage_current"] == top
    assert owner_client.get_scan(top)["claim"]["officer"] == "ann"  # claimed on open
    assert store.queue("bob", limit=500)["scan_id"].tolist().count(top) == 0  # hidden from others
    at.text_input(key="triage_note").input("knife in a boot")
    at.button(key="triage_confirmed").click().run()
    assert not at.exception
    decision = owner_client.get_scan(top)["decisions"][-1]
    assert (decision["officer"], decision["decision"], decision["note"]) == ("ann", "confirmed", "knife in a boot")
    assert decision["decided_at"] is not None
    assert top not in at.dataframe[0].value["scan"].tolist()
    assert any(a.action == "decision" and a.target == top for a in owner_client.audit_log(actor="ann"))


@pytest.fixture
def on_a_real_scan(owner_client: StoreClient, settings: Settings, now: datetime, monkeypatch: pytest.MonkeyPatch,
                   tmp_path: Path, store: Store) -> AppTest:
    """Officer ann's triage page with the first item open, over seeded verdicts on real rendered scans (two
    decided neighbours)."""
    point_app_at(monkeypatch, settings)
    add_users(owner_client)
    seed_demo(store, 80, seed=2, now=now, images=render_images(tmp_path / "img", 2, seed=2), decisions=2)
    at = app_as(user("ann", "officer", now), now).run()
    at.button(key="triage_next").click().run()
    return at


def test_viewer_switches_views_and_heatmap_on_a_real_scan(on_a_real_scan: AppTest) -> None:
    at = on_a_real_scan
    assert not at.error and not at.exception
    strip = [c.value for c in at.caption if "similarity" in c.value]
    assert len(strip) == 2 and len(at.get("image")) == 3  # the scan + a thumbnail per decided neighbour
    assert any(line.startswith(("**confirmed · ", "**cleared · benign**")) for line in strip)
    assert at.selectbox(key="triage_view").options == [
        "Pseudo-colour", "High energy", "Low energy", "Organic only", "Inorganic only", "Metal only"]
    plain = at.get("image")[0]
    for view in ("Metal only", "Low energy"):
        at.selectbox(key="triage_view").set_value(view).run()
        assert not at.exception and not at.error
    at.multiselect(key=f"triage_heat_{at.session_state['triage_current']}").set_value([]).run()
    at.slider(key="triage_zoom").set_value(2.0).run()
    assert not at.exception and at.get("image")[0].proto != plain.proto
    zoomed = at.get("image")[0].proto
    at.slider(key="triage_pan_x").set_value(0.0).run()  # pan appears once zoomed
    assert not at.exception and at.get("image")[0].proto != zoomed


def test_the_heatmap_overlay_starts_on_each_items_top_class(on_a_real_scan: AppTest,
                                                            owner_client: StoreClient) -> None:
    at = on_a_real_scan
    first = at.session_state["triage_current"]
    top = owner_client.get_scan(first)["verdicts"][0]["top_class"]
    assert at.multiselect(key=f"triage_heat_{first}").value == [top]
    at.multiselect(key=f"triage_heat_{first}").set_value([]).run()  # the officer hides the overlay
    at.button(key="triage_cleared").click().run()
    at.button(key="triage_next").click().run()
    second = at.session_state["triage_current"]
    verdict = owner_client.get_scan(second)["verdicts"][0]
    assert second != first and verdict["heatmaps"]
    # The next item shows its own top class again: the hidden overlay was the first item's choice only.
    assert at.multiselect(key=f"triage_heat_{second}").value == triage.overlay_default(verdict) != []


def test_officer_confirms_with_a_marked_region_and_its_signature_goes_to_the_threat_library(
        on_a_real_scan: AppTest, owner_client: StoreClient, settings: Settings) -> None:
    from xray.seizures import load_seizure, seizures_dir

    at = on_a_real_scan
    scan_id = at.session_state["triage_current"]
    plain = at.get("image")[0].proto
    at.checkbox(key="triage_mark").check().run()
    assert not at.exception and at.get("image")[0].proto != plain  # the region is outlined on the image at once
    at.number_input(key=f"triage_box_{scan_id}_x0").set_value(200).run()
    at.number_input(key=f"triage_box_{scan_id}_x1").set_value(150).run()
    at.button(key="triage_confirmed").click().run()  # an empty region: refused before anything is recorded
    assert "Fix the marked region first" in at.error[0].value and "empty or too small" in at.error[0].value
    assert at.session_state["triage_current"] == scan_id and owner_client.get_scan(scan_id)["decisions"] == []
    for side, value in zip(("x0", "y0", "x1", "y1"), (100, 60, 180, 140), strict=True):
        at.number_input(key=f"triage_box_{scan_id}_{side}").set_value(value).run()
    at.selectbox(key="triage_class").set_value("knife").run()
    at.button(key="triage_confirmed").click().run()
    assert not at.exception and not at.error
    assert any("added to the threat library" in m.value for m in at.success)
    [rec] = owner_client.list_seizures()
    [decision] = owner_client.get_scan(scan_id)["decisions"]
    assert (rec.scan_id, rec.box, rec.officer, rec.class_name, rec.kind, rec.decision_id) == (
        scan_id, [100, 60, 180, 140], "ann", "knife", "attenuation", decision["decision_id"])
    entry = load_seizure(seizures_dir(settings.library_dir), rec.seizure_id)  # cut from the raw dual-energy planes
    assert entry.kind == "attenuation" and entry.shape == (80, 80) and entry.meta["scanner_id"] == rec.scanner_id


def test_an_image_expired_under_retention_says_so_instead_of_unreadable(on_a_real_scan: AppTest,
                                                                        owner_client: StoreClient) -> None:
    import shutil

    at = on_a_real_scan
    folder = Path(owner_client.get_scan(at.session_state["triage_current"])["image"]["path"]).parent
    assert owner_client.expire_images(str(folder)) > 0  # what the retention job does before deleting the folder
    shutil.rmtree(folder)
    at.run()
    assert not at.exception and not at.error  # before: "Unreadable scan"
    assert any("Image expired under retention" in i.value for i in at.info)


def test_similar_item_known_only_by_its_label_reads_labelled_in_a_fixed_width_slot(
        owner_client: StoreClient, settings: Settings, now: datetime, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, store: Store) -> None:
    from xscreen.records import LabelRecord

    point_app_at(monkeypatch, settings)
    add_users(owner_client)
    waiting = seed_demo(store, 80, seed=2, now=now, images=render_images(tmp_path / "img", 2, seed=2),
                        decisions=0)
    store.add_labels([LabelRecord(label_id="l1", scan_id=waiting[-1], labels=["knife"], source="relabel",
                                         author="sue", created_at=now)])  # labelled, never decided
    at = app_as(user("ann", "officer", now), now).run()
    at.button(key="triage_next").click().run()
    assert not at.exception
    strip = [c for c in at.caption if "similarity" in c.value]
    assert len(strip) == 1 and strip[0].value.startswith("**labelled · knife**") and "nan" not in strip[0].value
    slots = at.columns[-6:]  # the strip is drawn last: six equal slots, one of them used
    assert len({c.weight for c in slots}) == 1 and any(strip[0] in c for c in slots[:1])


def test_officer_is_refused_the_models_page_server_side(seeded: Seeded, now: datetime) -> None:
    at = app_as(user("ann", "officer", now), now, script="pages/models.py").run()
    assert not at.exception
    assert "may not open the models page" in at.error[0].value
    assert not at.button  # nothing to click past the refusal


def test_supervisor_sees_registry_and_agreement(seeded: Seeded, now: datetime) -> None:
    at = app_as(user("sue", "supervisor", now), now).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    assert set(at.dataframe[0].value["version"]) == {seeded.champion, seeded.shadow}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Champion in force"] == seeded.champion and metrics["Shadow"] == seeded.shadow
    assert "Routing agreement" in metrics
    [events] = [d.value for d in at.dataframe if "to_state" in d.value.columns]  # the Lineage tab's table
    assert list(events["to_state"]) == ["candidate", "champion"]  # the first version listed: the champion
    assert at.button(key="models_apply").disabled  # needs reason + confirmation


def test_sql_console_runs_reads_and_refuses_writes(seeded: Seeded, now: datetime) -> None:
    at = app_as(user("ada", "analyst", now), now).run()
    at.switch_page("pages/sql.py").run()
    at.button(key="sql_run").click().run()
    assert not at.exception and len(at.dataframe[0].value) > 0
    assert (at.selectbox(key="sql_y").value, at.selectbox(key="sql_colour").value) == ("n", "verdict")
    assert len(at.get("plotly_chart")) == 1
    at.text_area(key="sql_text").input("DELETE FROM verdicts")
    at.button(key="sql_run").click().run()
    assert "Query refused" in at.error[0].value


def test_drift_page_shows_volume_drift_and_accuracy(seeded: Seeded, now: datetime, owner_client: StoreClient) -> None:
    at = app_as(user("sue", "supervisor", now), now).run()
    at.switch_page("pages/drift.py").run()
    assert not at.exception
    at.slider(key="drift_window").set_value(48).run()
    assert not at.exception
    assert int(at.metric[0].value.replace(",", "")) > 0
    assert len(at.get("plotly_chart")) == 3  # volume, score distribution, image statistics (no decisions yet)
    assert at.dataframe[0].value["class_name"].tolist()[0] == "ammunition"  # per-class drift table, sorted


def test_relabel_page_saves_a_label_and_shows_it_at_once(
        seeded: Seeded, now: datetime, owner_client: StoreClient) -> None:
    at = app_as(user("sue", "supervisor", now), now).run()
    at.switch_page("pages/relabel.py").run()
    assert not at.exception
    table = at.dataframe[0].value  # the queue, the page's first table
    budget = 50  # app.relabel_budget; 10% of it drawn at random from unlabelled scans
    assert len(table) <= budget and list(table["reason"]).count("random slice (unbiased evaluation)") == 5
    pick = at.selectbox(key="relabel_pick").value
    at.multiselect(key="relabel_labels").set_value(["knife"]).run()
    at.button(key="relabel_save").click().run()
    assert not at.exception
    assert owner_client.get_scan(pick)["current_labels"] == ["knife"]
    assert "**Current labels:** knife" in [m.value for m in at.markdown]  # not the labels from before the save
    assert at.success[0].value.startswith("Saved knife on 1 item(s)")


def test_whatif_page_reports_an_operating_point(seeded: Seeded, now: datetime, store: Store) -> None:
    from xscreen.records import DecisionRecord

    for i, scan_id in enumerate(seeded.flagged[:12]):  # officer feedback: labelled threats and false alarms
        store.record_decision(DecisionRecord(  # (deciding through the page: the decision tests above)
            decision_id=f"w{i}", scan_id=scan_id, officer="ann", decision="confirmed" if i % 3 == 0 else "cleared",
            threat_class=seeded.classes[0] if i % 3 == 0 else None, decided_at=now))
    sup = app_as(user("sue", "supervisor", now), now).run()
    sup.switch_page("pages/whatif.py").run()
    assert not sup.exception
    assert [m.label for m in sup.metric][:2] == ["Threshold (any threat)", "Workload"]
    assert any("no conformal certificate" in w.value for w in sup.warning)  # the seeded champion has none
    sup.slider(key="whatif_target").set_value(1.0).run()
    assert sup.metric[2].value == "100.0%"  # detection rate at a threshold catching every labelled threat


@pytest.mark.parametrize("how", ["signed out elsewhere", "user disabled"])
def test_session_the_store_ended_goes_back_to_sign_in(
        seeded: Seeded, now: datetime, owner_client: StoreClient, how: str) -> None:
    at = app_as(user("ann", "officer", now), now).run()
    assert at.title[0].value == "Live triage"
    token = at.session_state["xs_session"].token
    if how == "user disabled":
        owner_client.disable_user("ann")
    else:
        owner_client.logout(token)
    at.run()
    assert "Please sign in again" in at.warning[0].value
    assert at.title[0].value == "xscreen: sign in" and "xs_session" not in at.session_state


def test_sign_out_ends_the_session_in_the_store(seeded: Seeded, now: datetime, owner_client: StoreClient) -> None:
    from xscreen.errors import AuthError

    at = app_as(user("ann", "officer", now), now).run()
    token = at.session_state["xs_session"].token
    assert owner_client.resolve_token(token).name == "ann"
    at.switch_page("pages/logout.py").run()
    assert "xs_session" not in at.session_state
    assert at.title[0].value == "xscreen: sign in"
    with pytest.raises(AuthError):
        owner_client.resolve_token(token)  # dead everywhere, whatever a browser still keeps


def test_signing_in_through_the_form_opens_a_store_session_and_the_audit_names_the_user(
        seeded: Seeded, now: datetime, owner_client: StoreClient) -> None:
    at = app_as(None, now).run()
    at.text_input(key="login_user").input("ada")
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run()
    session = at.session_state["xs_session"]
    assert owner_client.resolve_token(session.token).name == "ada"
    assert at.session_state["xs_cookie_code"]  # the browser is asked to collect its cookie
    at.switch_page("pages/sql.py").run()
    at.button(key="sql_run").click().run()
    assert not at.exception
    # The page names no actor: the store takes it from the session the call carries.
    assert owner_client.audit_log(action="sql", limit=1)[0].actor == "ada"


def test_supervisor_sees_a_banner_when_screening_is_down_and_an_officer_does_not(
        seeded: Seeded, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import free_port

    sup, officer = app_as(user("sue", "supervisor", now), now).run(), app_as(user("ann", "officer", now), now).run()
    assert not [w.value for w in sup.warning if "Screening is" in w.value]  # all well: no banner
    monkeypatch.setenv("XSCREEN_NETWORK__STORE_PORT", str(free_port()))  # the owner now answers nowhere
    sup.run()
    officer.run()
    banners = [w.value for w in sup.warning if w.value.startswith("Screening is down: store owner")]
    assert len(banners) == 1 and "not reachable" in banners[0]
    assert not [w for w in officer.warning if "Screening is" in w.value]


def test_the_banner_reads_serving_health_backlog_and_all(seeded: Seeded, now: datetime, serving: ServingApi,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    serving.health.track_backlog(lambda: (7, 90.0))  # 7 files waiting, the oldest for 90 s (stall after 60 s)
    serving.health.failed("scoring", TimeoutError("classifier did not answer"))
    sup = app_as(user("sue", "supervisor", now), now).run()
    (banner,) = [w.value for w in sup.warning if w.value.startswith("Screening is")]
    # Before: only the store owner's /health was asked, and all looked well.
    assert banner.startswith("Screening is degraded: scoring failing") and "7 files waiting" in banner
    from tests.conftest import free_port

    monkeypatch.setenv("XSCREEN_NETWORK__API_PORT", str(free_port()))  # serving gone: API and watcher silent
    sup.run()
    assert any(w.value.startswith("Screening is down: serving is not running") for w in sup.warning)


def test_supervisor_promotes_the_shadow_with_confirmation_and_audit(
        seeded: Seeded, now: datetime, owner_client: StoreClient) -> None:
    at = app_as(user("sue", "supervisor", now), now).run()
    at.switch_page("pages/models.py").run()
    at.selectbox(key="models_version").set_value(seeded.shadow).run()
    at.selectbox(key="models_state").set_value("champion").run()
    at.text_input(key="models_reason").input("better on scanner-b").run()
    assert at.button(key="models_apply").disabled  # still needs the confirmation tick
    at.checkbox(key="models_confirm").check().run()
    at.button(key="models_apply").click().run()  # no gate report: refused, with the reason
    assert not at.exception and "no passing gate report" in at.error[0].value
    assert owner_client.champion().version == seeded.champion  # type: ignore[union-attr]
    at.checkbox(key="models_force").check().run()
    at.button(key="models_apply").click().run()
    assert not at.exception and "is now champion" in at.success[0].value
    champion = owner_client.champion()
    assert champion is not None and champion.version == seeded.shadow
    assert any(a.action == "promote" and a.target == seeded.shadow and a.details["forced"]
               for a in owner_client.audit_log(actor="sue"))


def test_models_page_says_which_scanner_an_adapted_model_is_for_and_on_what_it_rests(
        seeded: Seeded, now: datetime, owner_client: StoreClient) -> None:
    from tests.seeding import ADAPTATION_SUMMARY, model_record

    adapted = model_record("adapted-s4", seeded.classes, now, parent=seeded.champion)
    owner_client.register_model(adapted.model_copy(update={"metrics": {"adaptation": ADAPTATION_SUMMARY}}))
    at = app_as(user("sue", "supervisor", now), now).run()
    at.switch_page("pages/models.py").run()
    at.selectbox(key="models_version").set_value("adapted-s4").run()
    shown = [m.value for m in at.markdown]
    assert not at.exception
    assert any(t.startswith("Adapted for scanner scanner-4 from 500 unlabelled scans") for t in shown), shown
    assert any("PD at FAR 5% 0.15 → 0.25" in t for t in shown)
    at.selectbox(key="models_version").set_value(seeded.champion).run()  # not adapted: no such sentence
    assert not any(m.value.startswith("Adapted for scanner") for m in at.markdown)


def _scoped_state_change(now: datetime, version: str, state: str, reason: str, scanner: str,
                         force: bool = False) -> AppTest:
    """A supervisor on the Models page sets `version` to `state` for one scanner, confirmed (forced if `force`)."""
    at = app_as(user("sue", "supervisor", now), now).run()
    at.switch_page("pages/models.py").run()
    at.selectbox(key="models_version").set_value(version).run()
    at.selectbox(key="models_state").set_value(state).run()
    at.text_input(key="models_reason").input(reason).run()
    at.text_input(key="models_scanner").input(scanner).run()
    at.checkbox(key="models_confirm").check().run()
    if force:
        at.checkbox(key="models_force").check().run()
    at.button(key="models_apply").click().run()
    return at


def test_supervisor_promotes_a_champion_for_one_scanner_and_the_page_shows_its_scope(
        seeded: Seeded, now: datetime, owner_client: StoreClient) -> None:
    at = _scoped_state_change(now, seeded.shadow, "champion", "adapted to scanner-b", "scanner-b", force=True)
    assert not at.exception and "is now champion for scanner scanner-b" in at.success[0].value
    assert owner_client.champion().version == seeded.champion  # type: ignore[union-attr]  # the fleet's stays
    assert (seeded.shadow, "scanner-b") in {(m.version, m.scanner_id) for m in owner_client.models_in_force()}
    at.run()
    table = at.dataframe[0].value  # the registry, first on the page
    assert table.set_index("version").loc[seeded.shadow, "scope"] == "scanner-b"
    assert any(f"scanner-b → {seeded.shadow}" in c.value for c in at.caption)


def test_supervisor_narrows_the_shadow_to_one_scanner_and_the_page_says_so(
        seeded: Seeded, now: datetime, owner_client: StoreClient) -> None:
    at = _scoped_state_change(now, seeded.shadow, "shadow", "try the adapted model on scanner-b only", "scanner-b")
    assert not at.exception and "is now shadow for scanner scanner-b" in at.success[0].value
    assert ("shadow", seeded.shadow, "scanner-b") in {(m.role, m.version, m.scanner_id)
                                                       for m in owner_client.models_in_force()}
    at.run()
    assert {m.label: m.value for m in at.metric}["Shadow"] == seeded.shadow
    assert any("Scores scanner scanner-b only." in c.value for c in at.caption)


def test_analyst_sees_models_but_may_not_promote(seeded: Seeded, now: datetime) -> None:
    at = app_as(user("ada", "analyst", now), now).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    assert "Only supervisors and admins" in at.caption[-1].value
    assert "models_apply" not in [b.key for b in at.button]


def test_supervisor_exports_a_training_set_under_the_exports_folder(
        seeded: Seeded, now: datetime, settings: Settings) -> None:
    at = app_as(user("ann", "officer", now), now).run()
    at.button(key="triage_next").click().run()
    at.button(key="triage_seized").click().run()  # one labelled scan (its image file does not exist)
    sup = app_as(user("sue", "supervisor", now), now).run()
    sup.switch_page("pages/relabel.py").run()
    sup.text_input(key="relabel_export_name").input("week-47").run()
    sup.button(key="relabel_export").click().run()
    assert not sup.exception
    assert (settings.home / "exports" / "week-47" / "labels.csv").read_text().splitlines() == ["file,labels"]
    assert "no longer exist" in sup.warning[-1].value


@pytest.mark.parametrize("name", ["../outside", "/tmp/elsewhere", "a/b", "..", ""])
def test_export_anywhere_but_under_the_exports_folder_is_refused(
        seeded: Seeded, now: datetime, settings: Settings, tmp_path: Path, name: str) -> None:
    sup = app_as(user("sue", "supervisor", now), now).run()
    sup.switch_page("pages/relabel.py").run()
    assert "relabel_export_dir" not in [t.key for t in sup.text_input]  # no free-text folder any more
    before = sorted(p for p in tmp_path.rglob("*") if "exports" not in p.parts)
    sup.text_input(key="relabel_export_name").input(name).run()
    sup.button(key="relabel_export").click().run()
    refused = [e.value for e in sup.error if "Cannot export training set" in e.value]
    assert not sup.exception and len(refused) == 1  # (the seeded scans' image files do not exist: other errors)
    assert "is not allowed" in refused[0] and str(settings.home / "exports") in refused[0]
    assert sorted(p for p in tmp_path.rglob("*") if "exports" not in p.parts) == before  # nothing written


def test_released_item_is_not_reopened_and_goes_back_to_everyone(
        seeded: Seeded, now: datetime, owner_client: StoreClient, store: Store) -> None:
    at = app_as(user("ann", "officer", now), now).run()
    second = at.dataframe[0].value["scan"].iloc[1]
    at.selectbox(key="triage_pick").set_value(second).run()
    assert at.session_state["triage_current"] == second
    assert second not in store.queue("bob", limit=500)["scan_id"].tolist()
    at.button(key="triage_release").click().run()
    assert "triage_current" not in at.session_state
    assert second in store.queue("bob", limit=500)["scan_id"].tolist()


def test_item_claimed_by_another_officer_leaves_my_queue(seeded: Seeded, now: datetime,
                                                         owner_client: StoreClient, store: Store) -> None:
    at = app_as(user("ann", "officer", now), now).run()
    top = at.dataframe[0].value["scan"].iloc[0]
    store.claim(top, "bob")  # bob opened it a moment ago
    at.run()  # the next refresh of ann's queue
    assert top not in at.dataframe[0].value["scan"].tolist()
    assert top not in at.selectbox(key="triage_pick").options


def test_supervisor_adjudicates_conflicting_labels(seeded: Seeded, now: datetime, owner_client: StoreClient,
                                                  store: Store) -> None:
    from datetime import timedelta

    from xscreen.records import LabelRecord

    scan_id = owner_client.relabel_queue(limit=5)["scan_id"].iloc[0]
    earlier = now - timedelta(minutes=5)  # the app's clock is pinned at `now`: its label must be the newest
    store.add_labels([
        LabelRecord(label_id="l-ann", scan_id=scan_id, labels=["knife"], source="relabel", author="ann", created_at=earlier),
        LabelRecord(label_id="l-bob", scan_id=scan_id, labels=[], source="relabel", author="bob", created_at=earlier)])
    officer = app_as(user("ann", "officer", now), now).run()
    officer.switch_page("pages/relabel.py").run()
    officer.selectbox(key="relabel_pick").set_value(scan_id).run()
    assert "disagree" in officer.warning[0].value
    assert "relabel_adjudicate" not in [b.key for b in officer.button]  # officers cannot adjudicate
    sup = app_as(user("sue", "supervisor", now), now).run()
    sup.switch_page("pages/relabel.py").run()
    sup.selectbox(key="relabel_pick").set_value(scan_id).run()
    sup.multiselect(key="relabel_labels").set_value(["knife"]).run()
    sup.button(key="relabel_adjudicate").click().run()
    assert not sup.exception
    newest = owner_client.get_scan(scan_id)["labels"][0]
    assert (newest["source"], newest["author"], newest["labels"]) == ("adjudication", "sue", ["knife"])


def test_supervisor_acknowledges_then_resolves_a_monitoring_alert_with_audit(
        seeded: Seeded, now: datetime, owner_client: StoreClient, settings: Settings) -> None:
    from serving.monitor_job import run_monitor
    from xscreen.records import AlertRecord

    run = run_monitor(settings, owner_client, now=now)  # the seeded week: drift windows per scanner
    assert {m.scanner_id for m in run.measurements if m.kind == "image_stats_shift"} == {"scanner-a", "scanner-b",
                                                                                        "scanner-c"}
    owner_client.raise_alert_once(AlertRecord(
        alert_id="cert-b", raised_at=now, severity="page", kind="certificate", message="scanner-b routes 90%",
        details={"scanner_id": "scanner-b", "model_version": seeded.champion}))
    at = app_as(user("ada", "analyst", now), now).run()
    at.switch_page("pages/drift.py").run()
    assert not at.exception and "drift_alert_acknowledged" not in [b.key for b in at.button]  # analysts read
    at = app_as(user("sue", "supervisor", now), now).run()
    at.switch_page("pages/drift.py").run()
    assert not at.exception
    latest = at.dataframe[1].value  # after the per-class drift table
    assert list(latest["scanner"]) == ["(fleet)", "scanner-a", "scanner-b", "scanner-c"]
    assert "image_stats_shift" in latest.columns and "embedding_mmd" in latest.columns
    checks = at.dataframe[2].value  # each input-drift check: effect beside its floor, p beside its level
    assert list(checks.columns) == ["scanner", "model", "check", "effect", "floor", "p", "level", "moved", "scans"]
    assert set(checks["scanner"]) == {"scanner-a", "scanner-b", "scanner-c"}
    assert checks["level"].notna().all() and (checks["level"] <= settings.monitoring.drift_alpha).all()
    alerts = at.dataframe[-1].value
    assert alerts[["kind", "scanner", "status"]].values.tolist() == [["certificate", "scanner-b", "open"]]
    at.selectbox(key="drift_alert_pick").set_value("cert-b").run()
    at.button(key="drift_alert_acknowledged").click().run()
    assert not at.exception and [a.status for a in owner_client.list_alerts()] == ["acknowledged"]
    at.button(key="drift_alert_resolved").click().run()
    assert not at.exception and owner_client.list_alerts(status="resolved")[0].alert_id == "cert-b"
    assert "No open alerts." in [s.value for s in at.success]
    changes = [(a.action, a.target, a.details.get("status")) for a in owner_client.audit_log(actor="sue")]
    assert ("alert_status", "cert-b", "acknowledged") in changes and ("alert_status", "cert-b", "resolved") in changes
