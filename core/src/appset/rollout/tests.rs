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
        reported: Some(Reported {
            observed_spec_version: 1,
            sync: SyncStatus::OutOfSync,
            health: Health::Missing,
            revision: "aaa".into(),
            operation_command: String::new(),
        }),
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

    // Done when every app is Healthy.
    let mut done_statuses = fifth.statuses.clone();
    for app in &mut apps[1..] {
        report(app, SyncStatus::Synced, Health::Healthy);
    }
    for s in &mut done_statuses {
        if s.status == RolloutPhase::Pending {
            s.status = RolloutPhase::Progressing;
        }
    }
    let done = advance(&steps, &done_statuses, &apps, &commands, now());
    assert_eq!(done.progressing_step, None);
    assert!(!done.in_flight());
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
fn an_app_already_synced_needs_no_sync_and_an_unreported_spec_gets_none() {
    let steps = vec![step("dev", None), step("prod", None)];
    let mut ready = app("a-dev", "dev");
    report(&mut ready, SyncStatus::Synced, Health::Healthy);
    let mut unseen = app("b-prod", "prod");
    unseen.spec_version = 2; // the spoke still reports spec 1
    let apps = vec![ready, unseen];
    let out = advance(&steps, &[], &apps, &BTreeMap::new(), now());
    assert_eq!(phase(&out, "a-dev"), RolloutPhase::Healthy);
    assert!(
        out.to_sync.is_empty(),
        "b-prod's spoke has not seen its spec"
    );
    assert_eq!(out.progressing_step, Some(2));

    let mut apps = apps;
    apps[1]
        .reported
        .as_mut()
        .expect("reported")
        .observed_spec_version = 2;
    let next = advance(&steps, &out.statuses, &apps, &BTreeMap::new(), now());
    assert_eq!(synced(&next), ["b-prod"]);
}

#[test]
fn a_new_revision_or_spec_sends_a_healthy_app_back_to_waiting_and_the_first_step_again() {
    let steps = vec![step("dev", None), step("prod", None)];
    let mut apps = vec![app("a-dev", "dev"), app("b-prod", "prod")];
    for a in &mut apps {
        report(a, SyncStatus::Synced, Health::Healthy);
    }
    let healthy = advance(&steps, &[], &apps, &BTreeMap::new(), now());
    assert_eq!(healthy.progressing_step, None);

    // git moved: both OutOfSync at a new revision; only step 1 syncs.
    for a in &mut apps {
        let r = a.reported.as_mut().expect("reported");
        r.revision = "bbb".into();
        r.sync = SyncStatus::OutOfSync;
    }
    let moved = advance(&steps, &healthy.statuses, &apps, &BTreeMap::new(), now());
    assert_eq!(phase(&moved, "b-prod"), RolloutPhase::Waiting);
    assert_eq!(synced(&moved), ["a-dev"]);
    assert!(
        moved.statuses[1].message.contains("new revision"),
        "{}",
        moved.statuses[1].message
    );

    // A spec change alone does the same.
    let mut apps2 = apps.clone();
    for a in &mut apps2 {
        report(a, SyncStatus::Synced, Health::Healthy);
    }
    let settled = advance(&steps, &moved.statuses, &apps2, &BTreeMap::new(), now());
    let settled = advance(&steps, &settled.statuses, &apps2, &BTreeMap::new(), now());
    apps2[1].spec_version = 2;
    let r = apps2[1].reported.as_mut().expect("reported");
    r.observed_spec_version = 2;
    r.sync = SyncStatus::OutOfSync;
    let respec = advance(&steps, &settled.statuses, &apps2, &BTreeMap::new(), now());
    assert_eq!(
        synced(&respec),
        ["b-prod"],
        "step 1 is Healthy, so step 2 opens"
    );
    assert_eq!(respec.statuses[1].spec_version, 2);
}

#[test]
fn a_sync_that_never_ran_is_asked_again_and_one_that_failed_waits_for_health() {
    let steps = vec![step("dev", None), step("prod", None)];
    let apps = vec![app("a-dev", "dev"), app("b-prod", "prod")];
    let mut commands = BTreeMap::new();
    let mut first = advance(&steps, &[], &apps, &commands, now());
    issue(&mut first, &mut commands);

    commands.insert(
        "cmd-a-dev".into(),
        CommandProgress::Undelivered("expired before its spoke took it".into()),
    );
    let again = advance(&steps, &first.statuses, &apps, &commands, now());
    assert_eq!(synced(&again), ["a-dev"], "asked again at once");
    assert!(again.statuses[0].command.is_empty());

    let mut again = again;
    issue(&mut again, &mut commands);
    commands.insert(
        "cmd-a-dev".into(),
        CommandProgress::Finished("Failed: boom".into()),
    );
    let failed = advance(&steps, &again.statuses, &apps, &commands, now());
    assert_eq!(phase(&failed, "a-dev"), RolloutPhase::Progressing);
    assert!(failed.statuses[0].message.contains("Failed: boom"));
    assert!(
        failed.to_sync.is_empty(),
        "a failed app holds the rollout until it is Healthy"
    );

    // A Pending entry whose command is unknown is asked again too.
    let mut lost = again.statuses.clone();
    lost[0].status = RolloutPhase::Pending;
    lost[0].command = "cmd-gone".into();
    let out = advance(&steps, &lost, &apps, &BTreeMap::new(), now());
    assert_eq!(synced(&out), ["a-dev"]);
}

#[test]
fn an_app_no_longer_owned_leaves_the_rollout() {
    let steps = vec![step("dev", None)];
    let apps = vec![app("a-dev", "dev"), app("b-dev", "dev")];
    let first = advance(&steps, &[], &apps, &BTreeMap::new(), now());
    let out = advance(&steps, &first.statuses, &apps[..1], &BTreeMap::new(), now());
    assert_eq!(out.statuses.len(), 1);
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
