//! The spoke's [`HelmChartInflator`] for kustomizations' `helmCharts`: edgecd-render asks, edgecd-helm renders (a chart directory of the checkout, or a chart of a chart repository fetched into its digest cache) with this cluster's capabilities, as for Helm sources.

use std::path::PathBuf;
use std::sync::Arc;

use edgecd_core::app::{ApplicationSource, HelmSource};
use edgecd_render::{ChartInflation, ChartLocation, HelmChartInflator, Value};

use crate::cluster::LiveCluster;
use crate::git::Credentials;

/// Inflates charts for one render of one checkout; called from the render's blocking thread.
pub(crate) struct SpokeInflator {
    /// The runtime the reconciler runs on (the render thread blocks on it).
    pub handle: tokio::runtime::Handle,
    pub helm: Arc<edgecd_helm::HelmRenderer>,
    pub cluster: LiveCluster,
    pub credentials: Arc<Credentials>,
    /// A hard refresh fetches chart repository indexes again.
    pub hard: bool,
    /// The checkout's repository URL, root and commit (part of edgecd-helm's cache key for a chart in git).
    pub repo_url: String,
    pub root: PathBuf,
    pub commit: String,
}

impl HelmChartInflator for SpokeInflator {
    fn inflate(&self, chart: &ChartInflation) -> Result<Vec<Value>, String> {
        self.handle.block_on(self.inflate_async(chart))
    }

    fn repository_chart_values(&self, chart: &ChartLocation) -> Result<Option<String>, String> {
        let ChartLocation::Repository { url, name, version } = chart else {
            return Ok(None);
        };
        let inputs = edgecd_helm::RenderInputs {
            credentials: Some(&self.credentials),
            hard: self.hard,
            ..edgecd_helm::RenderInputs::default()
        };
        self.handle
            .block_on(self.helm.repo_chart_values(url, name, version, &inputs))
            .map_err(|e| e.to_string())
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
