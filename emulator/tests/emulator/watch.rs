//! A.5 cases 43–48: watches, bookmarks, expiry, timeouts, initial events and streaming lists.

use std::time::Duration;

use edgecd_kube_emulator::EmulatorConfig;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::support::*;

fn labelled(name: &str, app: &str) -> DynamicObject {
    obj(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": app}}}),
    )
}

#[tokio::test]
async fn a5_43_watch_from_list_rv() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    cms.create(&PostParams::default(), &configmap("old", json!({})))
        .await
        .unwrap();
    let list = cms.list(&Default::default()).await.unwrap();
    let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    let path = format!(
        "/api/v1/namespaces/default/configmaps?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion={list_rv}"
    );
    let (code, mut lines) = raw_watch(&env.client, &path).await;
    assert_eq!(code, 200);
    cms.create(&PostParams::default(), &configmap("new", json!({"k": "v"})))
        .await
        .unwrap();
    let event = next_line_matching(&mut lines, Duration::from_secs(5), |v| {
        v["type"] != "BOOKMARK"
    })
    .await;
    assert_eq!(event["type"], "ADDED");
    let o = &event["object"];
    assert_eq!(
        o["metadata"]["name"], "new",
        "only events after the list RV"
    );
    assert_eq!(
        (o["apiVersion"].as_str(), o["kind"].as_str()),
        (Some("v1"), Some("ConfigMap"))
    );
    let event_rv: u64 = o["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(event_rv > list_rv);
    assert_eq!(
        serde_json::to_string(&event).unwrap().len(),
        serde_json::to_string(&event).unwrap().trim().len()
    );
}

#[tokio::test]
async fn a5_44_bookmarks_and_resume() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let created = cms
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    let path = format!(
        "/api/v1/namespaces/default/configmaps?&watch=true&allowWatchBookmarks=true&resourceVersion={}",
        rv(&created)
    );
    let (_, mut lines) = raw_watch(&env.client, &path).await;
    cms.create(&PostParams::default(), &configmap("b", json!({})))
        .await
        .unwrap();
    let bookmark = next_line_matching(&mut lines, Duration::from_secs(5), |v| {
        v["type"] == "BOOKMARK"
    })
    .await;
    let object = &bookmark["object"];
    assert_eq!(
        (object["apiVersion"].as_str(), object["kind"].as_str()),
        (Some("v1"), Some("ConfigMap"))
    );
    let bookmark_rv = object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(bookmark_rv.parse::<u64>().unwrap() > rv(&created));
    // Resuming from the bookmark's RV yields only later events.
    let resume =
        format!("/api/v1/namespaces/default/configmaps?&watch=true&resourceVersion={bookmark_rv}");
    let (_, mut resumed) = raw_watch(&env.client, &resume).await;
    cms.create(&PostParams::default(), &configmap("c", json!({})))
        .await
        .unwrap();
    let next = next_line_matching(&mut resumed, Duration::from_secs(5), |_| true).await;
    assert_eq!(next["object"]["metadata"]["name"], "c");
}

/// With a short history, a watcher that sees no matching events would resume from a stale RV and get
/// `410` after its watch times out (see a5_45). With bookmarks it resumes from the bookmark's RV instead:
/// no error, no re-list.
#[tokio::test]
async fn a5_44_watcher_resumes_from_bookmark_rv() {
    let env = start_with(EmulatorConfig {
        watch_history: 5,
        bookmark_interval: Duration::from_millis(200),
        ..EmulatorConfig::default()
    })
    .await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    cms.create(&PostParams::default(), &labelled("w", "watched"))
        .await
        .unwrap();
    // The watcher is lazy: drive it from a task so that its watch is open while the noise happens.
    let stream = watcher(
        cms.clone(),
        watcher::Config::default().labels("app=watched").timeout(1),
    );
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Some(event) = stream.next().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    loop {
        if matches!(
            events.recv().await.unwrap().unwrap(),
            watcher::Event::InitDone
        ) {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..20 {
        cms.create(&PostParams::default(), &labelled(&format!("n{i}"), "noise"))
            .await
            .unwrap();
    }
    // Several bookmark intervals and watch timeouts pass; a new matching object then arrives as a
    // plain Apply on the resumed watch.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    cms.create(&PostParams::default(), &labelled("w2", "watched"))
        .await
        .unwrap();
    // The next event must be the new object: an error (410) or an Init (re-list) would mean the
    // bookmark RV was not used.
    let next = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    let got = match next {
        Ok(watcher::Event::Apply(o)) => o,
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => panic!("watcher error {e}"),
    };
    assert_eq!(got.metadata.name.as_deref(), Some("w2"));
}

#[tokio::test]
async fn a5_45_expired_resource_version() {
    let env = start_with(EmulatorConfig {
        watch_history: 5,
        bookmark_interval: Duration::from_secs(60),
        ..EmulatorConfig::default()
    })
    .await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let first = cms
        .create(&PostParams::default(), &configmap("c0", json!({})))
        .await
        .unwrap();
    for i in 1..10 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("c{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    let path = format!(
        "/api/v1/namespaces/default/configmaps?&watch=true&resourceVersion={}",
        rv(&first)
    );
    let (code, lines) = raw_watch(&env.client, &path).await;
    assert_eq!(code, 200);
    let all: Vec<String> = tokio::time::timeout(Duration::from_secs(5), lines.collect())
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let v: Value = serde_json::from_str(&all[0]).unwrap();
    assert_eq!(v["type"], "ERROR");
    assert_eq!(v["object"]["code"], 410);
    assert_eq!(v["object"]["reason"], "Expired");

    // kube's watcher: a selector it matches nothing of keeps its RV old; after its watch times out it
    // re-watches from that RV, gets the 410, reports an error and re-lists.
    cms.create(&PostParams::default(), &labelled("w", "watched"))
        .await
        .unwrap();
    let mut events = watcher(
        cms.clone(),
        watcher::Config::default()
            .labels("app=watched")
            .timeout(1)
            .disable_bookmarks(),
    )
    .boxed();
    loop {
        if matches!(
            events.next().await.unwrap().unwrap(),
            watcher::Event::InitDone
        ) {
            break;
        }
    }
    for i in 0..10 {
        cms.create(&PostParams::default(), &labelled(&format!("n{i}"), "noise"))
            .await
            .unwrap();
    }
    let mut saw_error = false;
    let saw_relist = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.next().await {
            match event {
                Err(_) => saw_error = true,
                Ok(watcher::Event::Init) if saw_error => return true,
                Ok(_) => {}
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(saw_error && saw_relist);
}

#[tokio::test]
async fn a5_46_timeout_rewatches_without_relist() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let created = cms
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let path = format!(
        "/api/v1/namespaces/default/configmaps?&watch=true&timeoutSeconds=2&resourceVersion={}",
        rv(&created)
    );
    let (_, lines) = raw_watch(&env.client, &path).await;
    let _: Vec<String> = tokio::time::timeout(Duration::from_secs(5), lines.collect())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );

    let mut events = watcher(cms.clone(), watcher::Config::default().timeout(1)).boxed();
    let mut inits = 0;
    loop {
        match events.next().await.unwrap().unwrap() {
            watcher::Event::Init => inits += 1,
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    cms.create(&PostParams::default(), &configmap("later", json!({})))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await.unwrap().unwrap() {
                watcher::Event::Init => inits += 1,
                watcher::Event::Apply(o) => return o,
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got.metadata.name.as_deref(), Some("later"));
    assert_eq!(inits, 1, "no re-list after watch timeouts");
}

#[tokio::test]
async fn a5_47_watch_from_zero_sends_existing_objects() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    for name in ["a", "b"] {
        cms.create(&PostParams::default(), &configmap(name, json!({})))
            .await
            .unwrap();
    }
    let (_, mut lines) = raw_watch(
        &env.client,
        "/api/v1/namespaces/default/configmaps?&watch=true&resourceVersion=0",
    )
    .await;
    let mut names = Vec::new();
    for _ in 0..2 {
        let v =
            next_line_matching(&mut lines, Duration::from_secs(5), |v| v["type"] == "ADDED").await;
        names.push(
            v["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    names.sort();
    assert_eq!(names, vec!["a", "b"]);
    cms.create(&PostParams::default(), &configmap("c", json!({})))
        .await
        .unwrap();
    let live =
        next_line_matching(&mut lines, Duration::from_secs(5), |v| v["type"] == "ADDED").await;
    assert_eq!(live["object"]["metadata"]["name"], "c");
}

#[tokio::test]
async fn a5_48_streaming_list() {
    let env = start().await;
    let cms: Api<DynamicObject> = api(&env.client, "", "v1", "ConfigMap", "default");
    for name in ["a", "b"] {
        cms.create(&PostParams::default(), &configmap(name, json!({})))
            .await
            .unwrap();
    }
    let (code, mut lines) = raw_watch(&env.client, "/api/v1/namespaces/default/configmaps?&watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0").await;
    assert_eq!(code, 200);
    let mut added = 0;
    let end = next_line_matching(&mut lines, Duration::from_secs(5), |v| {
        if v["type"] == "ADDED" {
            added += 1;
        }
        v["type"] == "BOOKMARK"
    })
    .await;
    assert_eq!(added, 2);
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    cms.create(&PostParams::default(), &configmap("c", json!({})))
        .await
        .unwrap();
    let live =
        next_line_matching(&mut lines, Duration::from_secs(5), |v| v["type"] == "ADDED").await;
    assert_eq!(live["object"]["metadata"]["name"], "c");

    let (code, body) = raw(&env.client, "GET", "/api/v1/namespaces/default/configmaps?&watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersion=0", None, None).await;
    assert_eq!(code, 422);
    assert_eq!(body["reason"], "Invalid");

    let events: Vec<_> = watcher(cms.clone(), watcher::Config::default().streaming_lists())
        .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, watcher::Event::InitApply(_)))
            .count(),
        3
    );
}
