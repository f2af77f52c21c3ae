//! The spoke's [`HelmChartInflator`] for kustomizations' `helmCharts`: edgecd-render asks, edgecd-helm renders (a chart directory of the checkout, or a chart of a chart repository fetched into its digest cache) with this cluster's capabilities, as for Helm sources.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use edgecd_core::app::{ApplicationSource, HelmSource};
use edgecd_render::{ChartInflation, ChartLocation, HelmChartInflator, Value};

use crate::cluster::LiveCluster;
use crate::git::Credentials;

/// At most this many `helmCharts` inflations in one render (every kustomization of it, nested bases included).
pub(crate) const MAX_INFLATIONS_PER_RENDER: usize = 64;
/// One render's inflations (and chart fetches) must be done this long after its first one started.
pub(crate) const INFLATION_DEADLINE: Duration = Duration::from_secs(300);

/// What one render may still spend on inflating charts: render's `MAX_CHARTS` bounds one kustomization, and
/// each inflation has its own timeouts, so nested bases would multiply both without this.
#[derive(Debug)]
pub(crate) struct InflationBudget {
    max_inflations: usize,
    deadline: Duration,
    used: AtomicUsize,
    started: Mutex<Option<Instant>>,
}

impl Default for InflationBudget {
    fn default() -> Self {
        Self::with_limits(MAX_INFLATIONS_PER_RENDER, INFLATION_DEADLINE)
    }
}

impl InflationBudget {
    pub(crate) fn with_limits(max_inflations: usize, deadline: Duration) -> Self {
        Self {
            max_inflations,
            deadline,
            used: AtomicUsize::new(0),
            started: Mutex::new(None),
        }
    }

    /// The time left of the render's deadline (which starts with its first inflation or fetch), or why none is.
    fn remaining(&self) -> Result<Duration, String> {
        let started = *self
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(Instant::now);
        self.deadline
            .checked_sub(started.elapsed())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| self.deadline_error())
    }

    fn deadline_error(&self) -> String {
        format!(
            "the render's helmCharts took longer than {}s (the limit for one render, every kustomization included); not inflated",
            self.deadline.as_secs()
        )
    }

    /// Takes one inflation; refused past the count.
    fn take(&self) -> Result<Duration, String> {
        let used = self.used.fetch_add(1, Ordering::SeqCst);
        if used >= self.max_inflations {
            return Err(format!(
                "more than {} helmCharts inflations in one render (the limit for one render, every kustomization included); not inflated",
                self.max_inflations
            ));
        }
        self.remaining()
    }
}

/// Inflates charts for one render of one checkout; called from the render's blocking thread.
pub(crate) struct SpokeInflator {
    /// The runtime the reconciler runs on (the render thread blocks on it).
    pub handle: tokio::runtime::Handle,
    pub helm: Arc<edgecd_helm::HelmRenderer>,
    pub cluster: LiveCluster,
    pub credentials: Arc<Credentials>,
    /// The repositories the app's project allows charts to be fetched from (`None`: no policy known, all).
    pub allowed_repos: Option<Arc<edgecd_helm::RepoCheck>>,
    /// A hard refresh fetches chart repository indexes again.
    pub hard: bool,
    /// The checkout's repository URL, root and commit (part of edgecd-helm's cache key for a chart in git).
    pub repo_url: String,
    pub root: PathBuf,
    pub commit: String,
    /// The render's inflation budget (count and deadline).
    pub budget: InflationBudget,
}

impl HelmChartInflator for SpokeInflator {
    fn inflate(&self, chart: &ChartInflation) -> Result<Vec<Value>, String> {
        let left = self.budget.take()?;
        self.handle.block_on(async {
            tokio::time::timeout(left, self.inflate_async(chart))
                .await
                .map_err(|_| self.budget.deadline_error())?
        })
    }

    fn repository_chart_values(&self, chart: &ChartLocation) -> Result<Option<String>, String> {
        let ChartLocation::Repository { url, name, version } = chart else {
            return Ok(None);
        };
        let inputs = edgecd_helm::RenderInputs {
            credentials: Some(&self.credentials),
            hard: self.hard,
            allowed_repos: self.allowed_repos.as_deref(),
            ..edgecd_helm::RenderInputs::default()
        };
        let left = self.budget.remaining()?;
        self.handle.block_on(async {
            tokio::time::timeout(
                left,
                self.helm.repo_chart_values(url, name, version, &inputs),
            )
            .await
            .map_err(|_| self.budget.deadline_error())?
            .map_err(|e| e.to_string())
        })
    }
}

impl SpokeInflator {
    async fn inflate_async(&self, chart: &ChartInflation) -> Result<Vec<Value>, String> {
        // Discovery is asked (and cached for ten minutes) only when a kustomization has helmCharts.
        let capabilities = self
            .cluster
            .capabilities()
            .await
            .map_err(|e| e.to_string())?;
        let helm = HelmSource {
            release_name: chart.release_name.clone(),
            namespace: chart.namespace.clone(),
            values: chart.values.clone().unwrap_or_default(),
            skip_crds: !chart.include_crds,
            skip_tests: chart.skip_tests,
            kube_version: chart.kube_version.clone(),
            api_versions: chart.api_versions.clone(),
            ..HelmSource::default()
        };
        // An empty namespace leaves helm's own default (`default`), as kustomize does.
        let context = edgecd_helm::RenderContext {
            app_name: &chart.release_name,
            namespace: "",
            capabilities: &capabilities,
        };
        let inputs = edgecd_helm::RenderInputs {
            credentials: Some(&self.credentials),
            hard: self.hard,
            allowed_repos: self.allowed_repos.as_deref(),
            ..edgecd_helm::RenderInputs::default()
        };
        let objects = match &chart.chart {
            ChartLocation::Directory(dir) => {
                let path = dir
                    .strip_prefix(&self.root)
                    .map_err(|_| format!("chart {} is outside the repository", dir.display()))?
                    .to_string_lossy()
                    .into_owned();
                let source = ApplicationSource {
                    repo_url: self.repo_url.clone(),
                    path,
                    helm: Some(helm),
                    ..ApplicationSource::default()
                };
                self.helm
                    .render_dir_with(&source, &context, &inputs, &self.root, dir, &self.commit)
                    .await
            }
            ChartLocation::Repository { url, name, version } => {
                let source = ApplicationSource {
                    repo_url: url.clone(),
                    chart: name.clone(),
                    target_revision: version.clone(),
                    helm: Some(helm),
                    ..ApplicationSource::default()
                };
                self.helm
                    .render_repo_chart_with(&source, &context, &inputs)
                    .await
                    .map(|(_, objects)| objects)
            }
        }
        .map_err(|e| e.to_string())?;
        Ok(objects.as_ref().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// team-b's kustomization names team-a's chart repository in `helmCharts`: refused before any request,
    /// though the spoke holds a credential for it.
    #[test]
    fn a_helm_charts_repository_the_project_does_not_allow_is_refused_before_any_request() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // A "chart repository" that counts connections and answers none.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let team_a = format!("http://{}/team-a", listener.local_addr().unwrap());
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        let work = tempfile::tempdir().unwrap();
        let client = {
            let _entered = runtime.enter();
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap()))
                .unwrap()
        };
        let policy = edgecd_core::project::ProjectSpec {
            source_repos: vec!["https://git.example/team-b/*".into()],
            ..edgecd_core::project::ProjectSpec::default()
        };
        let inflator = SpokeInflator {
            handle: runtime.handle().clone(),
            helm: Arc::new(edgecd_helm::HelmRenderer::new(
                edgecd_helm::HelmConfig::new("helm", work.path()),
            )),
            cluster: LiveCluster::new(client),
            credentials: Arc::new(Credentials::new([crate::git::RepoCredential {
                url_prefix: team_a.clone(),
                username: Some("team-a".into()),
                password: Some("team-a-secret".to_owned().into()),
                ..crate::git::RepoCredential::default()
            }])),
            allowed_repos: crate::policy::repo_check(Some(policy), "team-b"),
            hard: false,
            repo_url: "https://git.example/team-b/apps".into(),
            root: work.path().to_path_buf(),
            commit: "c1".into(),
            budget: InflationBudget::default(),
        };
        let error = inflator
            .repository_chart_values(&ChartLocation::Repository {
                url: team_a.clone(),
                name: "private".into(),
                version: "1.0.0".into(),
            })
            .unwrap_err();
        assert_eq!(
            error,
            format!(
                "chart private: repository {team_a} is not allowed: project team-b does not allow source repository {team_a} (sourceRepos)"
            )
        );
        assert!(!error.contains("team-a-secret"));
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
        // No policy known for the project: as before, nothing is refused here.
        assert!(crate::policy::repo_check(None, "team-b").is_none());
    }

    /// Nested bases multiply render's per-kustomization `MAX_CHARTS`: one render's inflations are bounded in
    /// count and time, refused before anything is fetched or run.
    #[test]
    fn one_renders_inflations_are_bounded_in_count_and_time() {
        let budget = InflationBudget::with_limits(2, Duration::from_secs(300));
        assert!(budget.take().is_ok() && budget.take().is_ok());
        assert_eq!(
            budget.take().unwrap_err(),
            "more than 2 helmCharts inflations in one render (the limit for one render, every kustomization included); not inflated"
        );
        let budget = InflationBudget::with_limits(64, Duration::from_millis(50));
        assert!(budget.take().is_ok());
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(
            budget.take().unwrap_err(),
            "the render's helmCharts took longer than 0s (the limit for one render, every kustomization included); not inflated"
        );
        assert_eq!(MAX_INFLATIONS_PER_RENDER, 64);
        assert_eq!(INFLATION_DEADLINE, Duration::from_secs(300));

        // Through the inflator: the 65th inflation of a render is refused without a request.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let work = tempfile::tempdir().unwrap();
        let client = {
            let _entered = runtime.enter();
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap()))
                .unwrap()
        };
        let budget = InflationBudget::default();
        for _ in 0..MAX_INFLATIONS_PER_RENDER {
            budget.take().unwrap();
        }
        let inflator = SpokeInflator {
            handle: runtime.handle().clone(),
            helm: Arc::new(edgecd_helm::HelmRenderer::new(
                edgecd_helm::HelmConfig::new("helm", work.path()),
            )),
            cluster: LiveCluster::new(client),
            credentials: Arc::new(Credentials::default()),
            allowed_repos: None,
            hard: false,
            repo_url: "https://git.example/apps".into(),
            root: work.path().to_path_buf(),
            commit: "c1".into(),
            budget,
        };
        let chart = ChartInflation {
            kustomization: work.path().join("kustomization.yaml"),
            repo_root: work.path().to_path_buf(),
            chart: ChartLocation::Repository {
                url: "http://127.0.0.1:1/charts".into(),
                name: "web".into(),
                version: "1.0.0".into(),
            },
            release_name: "web".into(),
            namespace: String::new(),
            values: None,
            include_crds: false,
            skip_tests: false,
            api_versions: Vec::new(),
            kube_version: String::new(),
        };
        let error = inflator.inflate(&chart).unwrap_err();
        assert!(
            error.starts_with("more than 64 helmCharts inflations"),
            "{error}"
        );
    }
}
