//! The spoke's runtime pieces against the Kubernetes API emulator: repository credentials follow labelled Secrets (edgecd and Argo CD labels) as they are created, changed and deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_spoke::credentials;
use edgecd_spoke::git::{CredentialStore, RepoUrl};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use secrecy::ExposeSecret;

const STATE_NS: &str = "edgecd-system";

fn repo_secret(name: &str, label: &str, kind: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(STATE_NS.into()),
            labels: Some(BTreeMap::from([(label.to_owned(), kind.to_owned())])),
            ..ObjectMeta::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Secret::default()
    }
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn url(text: &str) -> RepoUrl {
    RepoUrl::parse(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_follow_repository_secrets() {
    let emulator = KubeEmulator::start(EmulatorConfig::default())
        .await
        .unwrap();
    let client = emulator.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(STATE_NS.into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), STATE_NS);
    // An unrelated Secret is ignored.
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("unrelated".into()),
                    ..ObjectMeta::default()
                },
                string_data: Some(BTreeMap::from([(
                    "url".to_owned(),
                    "https://git.example.com/".to_owned(),
                )])),
                ..Secret::default()
            },
        )
        .await
        .unwrap();

    let store = CredentialStore::default();
    let watcher = tokio::spawn(credentials::watch(
        client.clone(),
        STATE_NS.into(),
        store.clone(),
    ));
    let app_repo = url("https://git.example.com/team/app.git");

    // An edgecd repository Secret appears as a credential.
    secrets
        .create(
            &PostParams::default(),
            &repo_secret(
                "team-app",
                credentials::SECRET_TYPE_LABEL,
                "repository",
                &[
                    ("url", "https://git.example.com/team/app.git"),
                    ("username", "bot"),
                    ("password", "s3cret"),
                ],
            ),
        )
        .await
        .unwrap();
    wait_until("the team-app credential", || {
        store.find(&app_repo).is_some()
    })
    .await;
    let found = store.find(&app_repo).unwrap();
    assert_eq!(found.username.as_deref(), Some("bot"));
    assert_eq!(found.password.as_ref().unwrap().expose_secret(), "s3cret");
    assert_eq!(store.snapshot().len(), 1);

    // An Argo CD credential template (prefix) adds a second one; the longest prefix still wins.
    secrets
        .create(
            &PostParams::default(),
            &repo_secret(
                "example-creds",
                credentials::ARGOCD_SECRET_TYPE_LABEL,
                "repo-creds",
                &[
                    ("type", "git"),
                    ("url", "https://git.example.com/"),
                    ("username", "template"),
                    ("password", "t0ken"),
                ],
            ),
        )
        .await
        .unwrap();
    let other_repo = url("https://git.example.com/infra/base.git");
    wait_until("the template credential", || {
        store.find(&other_repo).is_some()
    })
    .await;
    assert_eq!(
        store.find(&other_repo).unwrap().username.as_deref(),
        Some("template")
    );
    assert_eq!(
        store.find(&app_repo).unwrap().username.as_deref(),
        Some("bot")
    );

    // A change of a Secret's data is picked up.
    let patch = serde_json::json!({"stringData": {"username": "bot2"}});
    secrets
        .patch("team-app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_until("the changed username", || {
        store
            .find(&app_repo)
            .is_some_and(|c| c.username.as_deref() == Some("bot2"))
    })
    .await;

    // Deleting a Secret removes its credential.
    secrets
        .delete("team-app", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("the team-app credential to go", || {
        store.snapshot().len() == 1
    })
    .await;
    assert_eq!(
        store.find(&app_repo).unwrap().username.as_deref(),
        Some("template")
    );
    secrets
        .delete("example-creds", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("every credential to go", || store.snapshot().is_empty()).await;
    assert!(store.find(&app_repo).is_none());
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_secret_with_a_ca_certificate_reaches_an_https_server_with_a_private_ca() {
    use edgecd_spoke::git::{GitCache, GitConfig, Revision};
    use edgecd_testkit::{GitHttpServer, GitRepo, HTTP_PASSWORD, HTTP_USER};

    let emulator = KubeEmulator::start(EmulatorConfig::default())
        .await
        .unwrap();
    let client = emulator.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(STATE_NS.into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .unwrap();
    let repo = GitRepo::local().unwrap();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    )
    .unwrap();
    let commit = repo.commit("one").unwrap();
    let server = GitHttpServer::start_tls().unwrap();
    let remote = url(&server.serve("app", &repo).unwrap());
    let prefix = format!("https://localhost:{}/", server.port());

    let store = CredentialStore::default();
    let watcher = tokio::spawn(credentials::watch(
        client.clone(),
        STATE_NS.into(),
        store.clone(),
    ));
    let cache_dir = tempfile::tempdir().unwrap();
    let git = GitCache::new(GitConfig::new(cache_dir.path()), store.clone()).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), STATE_NS);

    // Without the CA the server is not trusted (the system roots do not know the test CA).
    let data = [
        ("url", prefix.as_str()),
        ("username", HTTP_USER),
        ("password", HTTP_PASSWORD),
    ];
    secrets
        .create(
            &PostParams::default(),
            &repo_secret(
                "private-ca",
                credentials::SECRET_TYPE_LABEL,
                "repo-creds",
                &data,
            ),
        )
        .await
        .unwrap();
    wait_until("the credential", || store.find(&remote).is_some()).await;
    let error = git.resolve(&remote, &Revision::head()).await.unwrap_err();
    assert!(error.to_string().contains("localhost"), "{error}");

    // With `caCert` in the Secret the same server is reached.
    let ca = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(server.ca_pem().unwrap())
    };
    secrets
        .patch(
            "private-ca",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"caCert": ca}})),
        )
        .await
        .unwrap();
    wait_until("the credential with its CA", || {
        store.find(&remote).is_some_and(|c| c.ca_cert_pem.is_some())
    })
    .await;
    let resolved = git.resolve(&remote, &Revision::head()).await.unwrap();
    assert_eq!(resolved.to_string(), commit);
    watcher.abort();
}
