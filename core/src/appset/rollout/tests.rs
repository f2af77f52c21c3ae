//! Tests of the rolling-sync state machine: step selection, step gating, `maxUpdate`, and what moves an app between phases.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::*;

fn expr(key: &str, operator: &str, values: &[&str]) -> MatchExpression {
    MatchExpression {
        key: key.into(),
        operator: operator.into(),
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    }
}

fn step(env: &str, max_update: Option<MaxUpdate>) -> RolloutStep {
    RolloutStep {
        match_expressions: vec![expr("env", "In", &[env])],
        max_update,
    }
}

fn app(name: &str, env: &str) -> RolloutApp {
    RolloutApp {
        project: "default".into(),
        name: name.into(),
        labels: BTreeMap::from([("env".to_owned(), env.to_owned())]),
        spec_version: 1,
        source: "https://git.example/web.git@HEAD".into(),
        reported: Some(Reported {
            observed_spec_version: 1,
            sync: SyncStatus::OutOfSync,
            health: Health::Missing,
            revision: "aaa".into(),
            operation_command: String::new(),
            operation_running: false,
            reconciled_at: Some(now() + time::Duration::seconds(10)),
        }),
    }
}

/// A Healthy entry for `app` at its reported revision and spec, as an earlier pass left it.
fn healthy_entry(app: &RolloutApp, step: i64) -> RolloutAppStatus {
    RolloutAppStatus {
        project: app.project.clone(),
        application: app.name.clone(),
        status: RolloutPhase::Healthy,
        step,
        message: "Synced and Healthy".into(),
        target_revision: app.reported.as_ref().expect("reported").revision.clone(),
        spec_version: app.spec_version,
        last_transition_time: now(),
        command: String::new(),
    }
}

fn report(app: &mut RolloutApp, sync: SyncStatus, health: Health) {
    let r = app.reported.as_mut().expect("reported");
    r.sync = sync;
    r.health = health;
}

fn now() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
}

fn phase(advance: &Advance, name: &str) -> RolloutPhase {
    advance
        .statuses
        .iter()
        .find(|s| s.application == name)
        .map(|s| s.status)
        .expect("entry")
}

fn synced(advance: &Advance) -> Vec<&str> {
    advance
        .to_sync
        .iter()
        .map(|&i| advance.statuses[i].application.as_str())
        .collect()
}

/// The caller records the command it issued for every app moved to Pending.
fn issue(advance: &mut Advance, ids: &mut BTreeMap<String, CommandProgress>) {
    for &i in &advance.to_sync {
        let id = format!("cmd-{}", advance.statuses[i].application);
        advance.statuses[i].command = id.clone();
        ids.insert(id, CommandProgress::InFlight);
    }
}

#[test]
fn steps_roll_out_in_order_and_each_waits_for_the_one_before_to_be_healthy() {
    let steps = vec![step("dev", None), step("prod", None)];
    let mut apps = vec![
        app("a-dev", "dev"),
        app("b-prod", "prod"),
        app("c-prod", "prod"),
    ];
    let mut commands = BTreeMap::new();

    let mut first = advance(&steps, &[], &apps, &commands, now());
    assert_eq!(synced(&first), ["a-dev"]);
    assert_eq!(phase(&first, "b-prod"), RolloutPhase::Waiting);
    assert_eq!(first.progressing_step, Some(1));
    assert!(
        first.summary.contains("rolling out step 1 of 2"),
        "{}",
        first.summary
    );
    issue(&mut first, &mut commands);

    // The command is queued: nothing moves.
    let second = advance(&steps, &first.statuses, &apps, &commands, now());
    assert_eq!(phase(&second, "a-dev"), RolloutPhase::Pending);
    assert!(second.to_sync.is_empty());

    // Its operation started: Progressing; still Progressing while it is not Healthy, even once Synced.
    apps[0]
        .reported
        .as_mut()
        .expect("reported")
        .operation_command = "cmd-a-dev".into();
    let third = advance(&steps, &second.statuses, &apps, &commands, now());
    assert_eq!(phase(&third, "a-dev"), RolloutPhase::Progressing);
    report(&mut apps[0], SyncStatus::Synced, Health::Progressing);
    let fourth = advance(&steps, &third.statuses, &apps, &commands, now());
    assert_eq!(phase(&fourth, "a-dev"), RolloutPhase::Progressing);
    assert!(fourth.to_sync.is_empty(), "step 2 waits for step 1");

    // Healthy: step 2 opens, both of its apps at once (no maxUpdate).
    report(&mut apps[0], SyncStatus::Synced, Health::Healthy);
    let fifth = advance(&steps, &fourth.statuses, &apps, &commands, now());
    assert_eq!(phase(&fifth, "a-dev"), RolloutPhase::Healthy);
    assert_eq!(synced(&fifth), ["b-prod", "c-prod"]);
    assert_eq!(fifth.progressing_step, Some(2));

    // Done when every app is Healthy: their syncs start and they report Synced and Healthy.
    let mut fifth = fifth;
    issue(&mut fifth, &mut commands);
    for app in &mut apps[1..] {
        report(app, SyncStatus::Synced, Health::Healthy);
        app.reported.as_mut().expect("reported").operation_command = format!("cmd-{}", app.name);
    }
    let done = advance(&steps, &fifth.statuses, &apps, &commands, now());
    assert_eq!(done.progressing_step, None, "{:?}", done.statuses);
    assert!(!done.awaiting_commands());
    assert!(
        done.summary.starts_with("rollout complete"),
        "{}",
        done.summary
    );
}

#[test]
fn max_update_bounds_how_many_apps_of_a_step_sync_at_once() {
    let five: Vec<RolloutApp> = (0..5).map(|i| app(&format!("p{i}"), "prod")).collect();
    let cases: [(Option<MaxUpdate>, usize); 7] = [
        (None, 5),
        (Some(MaxUpdate::Count(2)), 2),
        (Some(MaxUpdate::Count(0)), 0),
        (Some(MaxUpdate::Percent("40%".into())), 2),
        (Some(MaxUpdate::Percent("1%".into())), 1),
        (Some(MaxUpdate::Percent("0%".into())), 0),
        (Some(MaxUpdate::Percent("100%".into())), 5),
    ];
    for (max_update, expected) in cases {
        let steps = vec![step("prod", max_update.clone())];
        let out = advance(&steps, &[], &five, &BTreeMap::new(), now());
        assert_eq!(out.to_sync.len(), expected, "maxUpdate {max_update:?}");
    }

    // With 2 at a time, a third starts only when one of the two stops updating.
    let steps = vec![step("prod", Some(MaxUpdate::Count(2)))];
    let mut commands = BTreeMap::new();
    let mut apps = five.clone();
    let mut first = advance(&steps, &[], &apps, &commands, now());
    assert_eq!(synced(&first), ["p0", "p1"]);
    issue(&mut first, &mut commands);
    let second = advance(&steps, &first.statuses, &apps, &commands, now());
    assert!(second.to_sync.is_empty());
    apps[0]
        .reported
        .as_mut()
        .expect("reported")
        .operation_command = "cmd-p0".into();
    report(&mut apps[0], SyncStatus::Synced, Health::Healthy);
    let third = advance(&steps, &second.statuses, &apps, &commands, now());
    assert_eq!(phase(&third, "p0"), RolloutPhase::Healthy);
    assert_eq!(synced(&third), ["p2"]);
}

#[test]
fn selection_follows_argo_cd_in_and_not_in_and_reports_what_is_odd() {
    let steps = vec![
        RolloutStep {
            match_expressions: vec![
                expr("env", "In", &["dev", "qa"]),
                expr("tier", "NotIn", &["db"]),
            ],
            max_update: None,
        },
        RolloutStep {
            match_expressions: vec![expr("env", "NotIn", &["dev"])],
            max_update: None,
        },
        step("nowhere", None),
    ];
    let mut db = app("dev-db", "dev");
    db.labels.insert("tier".into(), "db".into());
    let mut unlabelled = app("bare", "x");
    unlabelled.labels.clear();
    let apps = vec![app("dev-web", "dev"), app("qa-web", "qa"), db, unlabelled];
    let out = advance(&steps, &[], &apps, &BTreeMap::new(), now());
    let step_of = |name: &str| {
        out.statuses
            .iter()
            .find(|s| s.application == name)
            .map(|s| s.step)
            .expect("entry")
    };
    assert_eq!(step_of("dev-web"), 1);
    assert_eq!(step_of("qa-web"), 1, "first of the two steps selecting it");
    assert_eq!(
        step_of("dev-db"),
        -1,
        "NotIn excludes it from step 1, and step 2 excludes dev"
    );
    assert_eq!(step_of("bare"), 2, "NotIn matches an app without the label");
    assert!(
        out.issues
            .iter()
            .any(|i| i.contains("default/qa-web is selected by steps 1, 2")),
        "{:?}",
        out.issues
    );
    assert!(
        out.issues
            .iter()
            .any(|i| i == "step 3 selects no application"),
        "{:?}",
        out.issues
    );
    // The app in no step is never synced by the rollout, and does not hold it up.
    assert!(!synced(&out).contains(&"dev-db"));
    assert!(
        out.summary.contains("1 application(s) in no step"),
        "{}",
        out.summary
    );
}

#[test]
fn a_waiting_app_found_synced_after_it_started_waiting_needs_no_sync() {
    let steps = vec![step("dev", None), step("prod", None)];
    let mut ready = app("a-dev", "dev");
    report(&mut ready, SyncStatus::Synced, Health::Healthy);
    let mut waiting = healthy_entry(&ready, 1);
    waiting.status = RolloutPhase::Waiting;
    // Compared after it started waiting: Healthy with no sync.
    let out = advance(
        &steps,
        &[waiting.clone()],
        &[ready.clone()],
        &BTreeMap::new(),
        now(),
    );
    assert_eq!(phase(&out, "a-dev"), RolloutPhase::Healthy);
    assert!(out.to_sync.is_empty());
    // A report computed before it started waiting (a stale one, sent late) proves nothing: a sync is asked.
    ready.reported.as_mut().expect("reported").reconciled_at = Some(now());
    let out = advance(&steps, &[waiting], &[ready], &BTreeMap::new(), now());
    assert_eq!(synced(&out), ["a-dev"]);
}

#[test]
fn a_sync_is_asked_only_once_the_spoke_reports_the_current_spec() {
    let steps = vec![step("dev", None)];
    let mut unseen = app("a-dev", "dev");
    unseen.spec_version = 2; // the spoke still reports spec 1
    let out = advance(&steps, &[], &[unseen.clone()], &BTreeMap::new(), now());
    assert!(out.to_sync.is_empty(), "its spoke has not seen its spec");
    unseen
        .reported
        .as_mut()
        .expect("reported")
        .observed_spec_version = 2;
    let next = advance(&steps, &out.statuses, &[unseen], &BTreeMap::new(), now());
    assert_eq!(synced(&next), ["a-dev"]);
}

#[test]
fn a_new_revision_or_spec_sends_a_healthy_app_back_to_waiting_and_the_first_step_again() {
    let steps = vec![step("dev", None), step("prod", None)];
    let mut apps = vec![app("a-dev", "dev"), app("b-prod", "prod")];
    for a in &mut apps {
        report(a, SyncStatus::Synced, Health::Healthy);
    }
    let healthy = vec![healthy_entry(&apps[0], 1), healthy_entry(&apps[1], 2)];
    let still = advance(&steps, &healthy, &apps, &BTreeMap::new(), now());
    assert_eq!(still.progressing_step, None);

    // git moved: both OutOfSync at a new revision; only step 1 syncs.
    for a in &mut apps {
        let r = a.reported.as_mut().expect("reported");
        r.revision = "bbb".into();
        r.sync = SyncStatus::OutOfSync;
    }
    let moved = advance(&steps, &still.statuses, &apps, &BTreeMap::new(), now());
    assert_eq!(phase(&moved, "b-prod"), RolloutPhase::Waiting);
    assert_eq!(synced(&moved), ["a-dev"]);
    assert_eq!(moved.statuses[0].target_revision, "bbb");
    assert!(
        moved.statuses[1].message.contains("new revision"),
        "{}",
        moved.statuses[1].message
    );

    // A spec change alone does the same for step 2, once step 1 is Healthy again.
    report(&mut apps[0], SyncStatus::Synced, Health::Healthy);
    report(&mut apps[1], SyncStatus::Synced, Health::Healthy);
    let healthy = vec![healthy_entry(&apps[0], 1), healthy_entry(&apps[1], 2)];
    apps[1].spec_version = 2;
    let r = apps[1].reported.as_mut().expect("reported");
    r.observed_spec_version = 2;
    r.sync = SyncStatus::OutOfSync;
    let respec = advance(&steps, &healthy, &apps, &BTreeMap::new(), now());
    assert_eq!(
        synced(&respec),
        ["b-prod"],
        "step 1 is Healthy, so step 2 opens"
    );
    assert_eq!(respec.statuses[1].spec_version, 2);
}

#[test]
fn a_step_stays_closed_while_an_earlier_app_is_not_synced_and_healthy_now() {
    let steps = vec![step("dev", None), step("prod", None)];
    let mut apps = vec![app("a-dev", "dev"), app("b-prod", "prod")];
    report(&mut apps[0], SyncStatus::Synced, Health::Healthy);
    let entries = vec![
        healthy_entry(&apps[0], 1),
        RolloutAppStatus {
            status: RolloutPhase::Waiting,
            ..healthy_entry(&apps[1], 2)
        },
    ];
    // The canary's cluster is unreachable (its health counts as Unknown), or it degraded since: step 2 waits.
    for health in [Health::Unknown, Health::Degraded] {
        report(&mut apps[0], SyncStatus::Synced, health);
        let out = advance(&steps, &entries, &apps, &BTreeMap::new(), now());
        assert!(out.to_sync.is_empty(), "{health:?}");
        assert_eq!(out.progressing_step, Some(1), "{health:?}");
    }
    report(&mut apps[0], SyncStatus::Synced, Health::Healthy);
    let out = advance(&steps, &entries, &apps, &BTreeMap::new(), now());
    assert_eq!(synced(&out), ["b-prod"]);
}

#[test]
fn a_later_step_syncs_only_the_revision_the_earlier_steps_are_healthy_at() {
    let steps = vec![step("dev", None), step("prod", None)];
    let mut apps = vec![app("a-dev", "dev"), app("b-prod", "prod")];
    report(&mut apps[0], SyncStatus::Synced, Health::Healthy);
    let entries = vec![healthy_entry(&apps[0], 1), healthy_entry(&apps[1], 2)];
    // prod's spoke polled git first: it sees bbb, the canary still runs aaa.
    apps[1].reported.as_mut().expect("reported").revision = "bbb".into();
    let out = advance(&steps, &entries, &apps, &BTreeMap::new(), now());
    assert!(out.to_sync.is_empty(), "{:?}", out.statuses);
    assert!(
        out.statuses[1].message.contains("revision aaa"),
        "{}",
        out.statuses[1].message
    );
    // Another source is not held by the canary's revision.
    apps[1].source = "https://git.example/other.git@HEAD".into();
    let out = advance(&steps, &entries, &apps, &BTreeMap::new(), now());
    assert_eq!(synced(&out), ["b-prod"]);
    assert_eq!(
        out.statuses[1].target_revision, "bbb",
        "the sync is asked at what the spoke reported"
    );
}

#[test]
fn a_sync_still_in_flight_counts_against_max_update_after_a_new_revision() {
    let steps = vec![step("prod", Some(MaxUpdate::Count(1)))];
    let mut apps = vec![app("x", "prod"), app("y", "prod")];
    let mut commands = BTreeMap::new();
    let mut first = advance(&steps, &[], &apps, &commands, now());
    assert_eq!(synced(&first), ["x"]);
    issue(&mut first, &mut commands);
    // A new revision while x's sync is still queued: x waits, but its sync still counts, so y is not asked.
    for a in &mut apps {
        a.reported.as_mut().expect("reported").revision = "bbb".into();
    }
    let second = advance(&steps, &first.statuses, &apps, &commands, now());
    assert_eq!(phase(&second, "x"), RolloutPhase::Waiting);
    assert!(second.to_sync.is_empty(), "{:?}", second.statuses);
    assert!(second.awaiting_commands());
    // Its sync ends: one of them is asked now.
    commands.insert(
        "cmd-x".into(),
        CommandProgress::Finished("Succeeded".into()),
    );
    let third = advance(&steps, &second.statuses, &apps, &commands, now());
    assert_eq!(third.to_sync.len(), 1, "{:?}", third.statuses);
}

#[test]
fn an_app_no_longer_owned_leaves_the_rollout() {
    let steps = vec![step("dev", None)];
    let apps = vec![app("a-dev", "dev"), app("b-dev", "dev")];
    let first = advance(&steps, &[], &apps, &BTreeMap::new(), now());
    let out = advance(&steps, &first.statuses, &apps[1..], &BTreeMap::new(), now());
    let left: Vec<&str> = out
        .statuses
        .iter()
        .map(|s| s.application.as_str())
        .collect();
    assert_eq!(left, ["b-dev"]);
}

#[test]
fn max_update_limits_round_down_but_a_positive_percentage_allows_one() {
    assert_eq!(MaxUpdate::Percent("10%".into()).limit(25), 2);
    assert_eq!(MaxUpdate::Percent("10%".into()).limit(3), 1);
    assert_eq!(MaxUpdate::Percent("0%".into()).limit(30), 0);
    assert_eq!(MaxUpdate::Percent("150%".into()).limit(4), 6);
    assert_eq!(MaxUpdate::Count(7).limit(3), 7);
    assert_eq!(MaxUpdate::percent("12%"), Some(12));
    assert_eq!(MaxUpdate::percent("12"), None);
    assert_eq!(MaxUpdate::percent("%"), None);
    assert_eq!(MaxUpdate::percent("-1%"), None);
}

#[test]
fn argo_cd_rolling_sync_specs_are_read_with_their_steps() {
    let spec = serde_json::json!({
        "generators": [{"list": {"elements": [{"env": "env-dev"}]}}],
        "strategy": {
            "type": "RollingSync",
            "deletionOrder": "AllAtOnce",
            "rollingSync": {"steps": [
                {"matchExpressions": [{"key": "envLabel", "operator": "In", "values": ["env-dev"]}]},
                {"matchExpressions": [{"key": "envLabel", "operator": "In", "values": ["env-qa"]}], "maxUpdate": 0},
                {"matchExpressions": [{"key": "envLabel", "operator": "NotIn", "values": ["env-dev", "env-qa"]}], "maxUpdate": "10%"}
            ]}
        },
        "template": {"metadata": {"name": "{{env}}", "labels": {"envLabel": "{{env}}"}},
                     "spec": {"project": "default", "source": {"repoURL": "https://git.example/r.git", "path": "p"},
                              "destination": {"name": "c", "namespace": "n"}}}
    });
    let parsed = crate::appset::ApplicationSetSpec::from_json(&spec).expect("valid");
    let steps = parsed.rolling_steps().expect("rolling");
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[1].max_update, Some(MaxUpdate::Count(0)));
    assert_eq!(steps[2].max_update, Some(MaxUpdate::Percent("10%".into())));
    assert!(
        parsed
            .hub_only()
            .is_some_and(|why| why.contains("RollingSync"))
    );

    let mut all_at_once = spec.clone();
    all_at_once["strategy"] = serde_json::json!({"type": "AllAtOnce"});
    let parsed = crate::appset::ApplicationSetSpec::from_json(&all_at_once).expect("valid");
    assert!(parsed.rolling_steps().is_none());
    assert!(parsed.hub_only().is_none());
}

#[test]
fn a_sync_whose_operation_ended_no_longer_counts_even_if_its_command_never_answered() {
    let steps = vec![step("prod", Some(MaxUpdate::Count(1)))];
    let mut apps = vec![app("x", "prod"), app("y", "prod")];
    let mut commands = BTreeMap::new();
    let mut first = advance(&steps, &[], &apps, &commands, now());
    issue(&mut first, &mut commands);
    // x's sync runs, then a new revision arrives; the outbox still says Running (its spoke restarted mid-sync
    // and never answered).
    let r = apps[0].reported.as_mut().expect("reported");
    r.operation_command = "cmd-x".into();
    r.operation_running = true;
    let running = advance(&steps, &first.statuses, &apps, &commands, now());
    assert_eq!(phase(&running, "x"), RolloutPhase::Progressing);
    for a in &mut apps {
        a.reported.as_mut().expect("reported").revision = "bbb".into();
    }
    let moved = advance(&steps, &running.statuses, &apps, &commands, now());
    assert_eq!(phase(&moved, "x"), RolloutPhase::Waiting);
    assert!(
        moved.to_sync.is_empty(),
        "x's operation still runs: {:?}",
        moved.statuses
    );
    // The spoke reports the operation over: x's sync no longer counts, and one of the two is asked.
    apps[0]
        .reported
        .as_mut()
        .expect("reported")
        .operation_running = false;
    let next = advance(&steps, &moved.statuses, &apps, &commands, now());
    assert_eq!(next.to_sync.len(), 1, "{:?}", next.statuses);
}
