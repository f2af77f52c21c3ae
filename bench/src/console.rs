//! `edgecd-bench console`: headless Chromium's time to the first rendered page of the app table, and to a re-rendered table after a filter change, with 100,000 apps in the hub.
//!
//! The hub is a real `edgecd_hub::server` on an SQLite store loaded like the
//! `list` benchmark's (100,000 apps on 1,000 clusters). Times are read from
//! the page itself: navigation start (`performance.timeOrigin`) to the
//! console's `edgecd:apps-rendered` mark, and from the filter's change event
//! to the next mark, so WebDriver round trips are not counted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use edgecd_hub::server::{Database, Server, ServerConfig};
use edgecd_hub::store::{SqliteStore, Store};

use crate::list::ListBench;
use edgecd_testkit::browser::Browser;

/// Options of the console benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleBench {
    /// Applications in the hub.
    #[arg(long, default_value_t = 100_000)]
    pub apps: usize,
    /// Clusters the apps are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub clusters: usize,
    /// Timed page loads and filter changes.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
}

#[derive(Debug, serde::Serialize)]
struct Figures {
    apps: usize,
    clusters: usize,
    iterations: usize,
    first_page_p50_ms: f64,
    first_page_p99_ms: f64,
    first_page_max_ms: f64,
    filter_p50_ms: f64,
    filter_p99_ms: f64,
    filter_max_ms: f64,
    goal_first_page_ms: f64,
    goal_filter_ms: f64,
    meets_goals: bool,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

const RENDERED: &str = "return performance.getEntriesByName('edgecd:apps-rendered').length > 0";

impl ConsoleBench {
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        runtime.block_on(self.run_async())
    }

    async fn run_async(self) -> anyhow::Result<()> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let store = SqliteStore::open(&dir.path().join("hub.db"))
            .await
            .context("opening SQLite")?;
        let loader = ListBench {
            apps: self.apps,
            clusters: self.clusters,
            page_size: 100,
            iterations: 0,
            backend: crate::list::Backends::Sqlite,
        };
        let started = std::time::Instant::now();
        loader.load(&store).await.context("loading the fleet")?;
        eprintln!(
            "loaded {} apps on {} clusters in {:.1} s",
            self.apps,
            self.clusters,
            started.elapsed().as_secs_f64()
        );
        let store: Arc<dyn Store> = Arc::new(store);
        let hub = Server::start(ServerConfig::insecure_local(Database::Store(store)))
            .await
            .context("starting the hub")?;
        let base = format!("http://{}", hub.http_addr());
        let browser = Browser::start().await.context("starting Chromium")?;

        // One warm-up load: the browser's module cache and the database's
        // page cache then hold what a returning operator's would.
        browser.goto(&format!("{base}/#/apps")).await?;
        browser
            .wait_until(RENDERED, Duration::from_secs(30))
            .await
            .context("warm-up load")?;

        let mut first_page = Vec::new();
        let mut filter = Vec::new();
        let healths = ["Degraded", "Progressing", "Missing", "Healthy"];
        for i in 0..self.iterations {
            // A fresh navigation (about:blank in between, so it is a full load).
            browser.goto("about:blank").await?;
            browser.goto(&format!("{base}/#/apps")).await?;
            browser
                .wait_until(RENDERED, Duration::from_secs(30))
                .await
                .context("first page")?;
            let ms = browser
                .eval("return performance.getEntriesByName('edgecd:apps-rendered')[0].startTime")
                .await?
                .as_f64()
                .context("no render mark")?;
            first_page.push(ms);

            // A filter change: health, through the select, as a user would.
            browser
                .eval("performance.clearMarks('edgecd:apps-rendered'); return true")
                .await?;
            let health = healths[i % healths.len()];
            browser
                .eval(&format!(
                    "const s = document.querySelector('select[name=health]'); s.value = '{health}'; \
                     s.dispatchEvent(new Event('change')); return true"
                ))
                .await?;
            if let Err(error) = browser.wait_until(RENDERED, Duration::from_secs(30)).await {
                let state = browser
                    .eval(
                        "return location.hash + ' | ' + ((document.querySelector('#apps-status') || {}).textContent || '') \
                         + ' | ' + document.body.textContent.slice(0, 300)",
                    )
                    .await
                    .unwrap_or_default();
                anyhow::bail!(
                    "iteration {i}: filtered page (health={health}) not rendered: {error}; page: {state}"
                );
            }
            let ms = browser
                .eval(
                    "return performance.getEntriesByName('edgecd:apps-rendered')[0].startTime - window.__edgecdFilterStart",
                )
                .await?
                .as_f64()
                .context("no filter mark")?;
            filter.push(ms);
        }
        browser.close().await.ok();
        hub.shutdown().await.ok();

        first_page.sort_by(f64::total_cmp);
        filter.sort_by(f64::total_cmp);
        let figures = Figures {
            apps: self.apps,
            clusters: self.clusters,
            iterations: self.iterations,
            first_page_p50_ms: percentile(&first_page, 50.0),
            first_page_p99_ms: percentile(&first_page, 99.0),
            first_page_max_ms: first_page.last().copied().unwrap_or(f64::NAN),
            filter_p50_ms: percentile(&filter, 50.0),
            filter_p99_ms: percentile(&filter, 99.0),
            filter_max_ms: filter.last().copied().unwrap_or(f64::NAN),
            goal_first_page_ms: 1000.0,
            goal_filter_ms: 300.0,
            meets_goals: false,
        };
        let figures = Figures {
            meets_goals: figures.first_page_p99_ms <= figures.goal_first_page_ms
                && figures.filter_p99_ms <= figures.goal_filter_ms,
            ..figures
        };
        println!(
            "{:<34} {:>9} {:>9} {:>9} {:>9}",
            "measure", "p50 ms", "p99 ms", "max ms", "goal ms"
        );
        println!(
            "{:<34} {:>9.1} {:>9.1} {:>9.1} {:>9.0}",
            "navigation → first table page",
            figures.first_page_p50_ms,
            figures.first_page_p99_ms,
            figures.first_page_max_ms,
            figures.goal_first_page_ms
        );
        println!(
            "{:<34} {:>9.1} {:>9.1} {:>9.1} {:>9.0}",
            "filter change → table re-rendered",
            figures.filter_p50_ms,
            figures.filter_p99_ms,
            figures.filter_max_ms,
            figures.goal_filter_ms
        );
        println!("{}", serde_json::to_string(&figures)?);
        Ok(())
    }
}
