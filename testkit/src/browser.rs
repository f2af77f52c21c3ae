//! Headless Chromium driven over WebDriver (Debian's chromedriver + fantoccini), for the console's browser tests and benchmark.
//!
//! `Browser::start` runs `chromedriver` on a free loopback port and opens one
//! headless Chromium session at 1280×900. The driver process is killed when
//! the `Browser` is dropped. Screenshots go to a directory given by the
//! caller (the console test writes them to `docs/console/` when
//! `EDGECD_SCREENSHOTS` names that directory).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Why the browser could not be driven.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("{what} not found (install Debian's chromium and chromium-driver; scripts/test does)")]
    Missing { what: &'static str },
    #[error("starting chromedriver")]
    Spawn(#[source] std::io::Error),
    #[error("chromedriver did not become ready on port {port}")]
    NotReady { port: u16 },
    #[error("opening a Chromium session")]
    Session(#[source] fantoccini::error::NewSessionError),
    #[error("webdriver command failed: {0}")]
    Command(#[from] fantoccini::error::CmdError),
    #[error("writing screenshot {path}")]
    Screenshot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error("no element matches {0}")]
    NoElement(String),
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The chromedriver process; its process group is ended on drop.
#[derive(Debug)]
struct Driver(tokio::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            // `kill -- -PGID`: chromedriver and every Chromium process.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    _driver: Driver,
}

impl Browser {
    /// Start chromedriver and a headless Chromium session.
    pub async fn start() -> Result<Self, BrowserError> {
        let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"])
            .ok_or(BrowserError::Missing { what: "chromium" })?;
        let driver_bin = find_binary(&["chromedriver"]).ok_or(BrowserError::Missing {
            what: "chromedriver",
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(BrowserError::Spawn)?
            .port();
        // chromedriver leads its own process group, which the Chromium it
        // starts joins: dropping the `Browser` (also on a panic) ends the
        // whole group, so no browser outlives a failed test.
        let driver = tokio::process::Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(BrowserError::Spawn)?;
        let driver = Driver(driver);
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--force-device-scale-factor=1",
                    "--disable-extensions", "--no-first-run",
                ],
            }),
        );
        let mut last = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Ok(Browser {
                        client,
                        _driver: driver,
                    });
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.map_or(BrowserError::NotReady { port }, BrowserError::Session))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        Ok(self.client.goto(url).await?)
    }

    /// Wait until `css` matches an element (at most `timeout`).
    pub async fn wait_for(
        &self,
        css: &str,
        timeout: Duration,
    ) -> Result<fantoccini::elements::Element, BrowserError> {
        self.client
            .wait()
            .at_most(timeout)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| match e {
                fantoccini::error::CmdError::WaitTimeout => {
                    BrowserError::Timeout(timeout, format!("element {css}"))
                }
                other => BrowserError::Command(other),
            })
    }

    /// Wait until the JavaScript expression `js` (a function body returning
    /// a value) returns `true`.
    pub async fn wait_until(&self, js: &str, timeout: Duration) -> Result<(), BrowserError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.client.execute(js, Vec::new()).await?;
            if value == json!(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BrowserError::Timeout(timeout, js.to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Run `js` (a function body) and return its value.
    pub async fn eval(&self, js: &str) -> Result<serde_json::Value, BrowserError> {
        Ok(self.client.execute(js, Vec::new()).await?)
    }

    /// The `textContent` of the first element matching `css` (`None` when nothing matches).
    pub async fn text(&self, css: &str) -> Result<Option<String>, BrowserError> {
        let value = self
            .eval(&format!(
                "const e = document.querySelector({css:?}); return e ? e.textContent : null"
            ))
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// The `textContent` of every element matching `css`, in document order.
    pub async fn texts(&self, css: &str) -> Result<Vec<String>, BrowserError> {
        let value = self
            .eval(&format!(
                "return [...document.querySelectorAll({css:?})].map(e => e.textContent)"
            ))
            .await?;
        Ok(value
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Wait until the text of the first element matching `css` satisfies `ok`; the
    /// timeout error names the text last seen.
    pub async fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String, BrowserError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let text = self.text(css).await?;
            if let Some(text) = &text
                && ok(text)
            {
                return Ok(text.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BrowserError::Timeout(
                    timeout,
                    format!("the text of {css} (last seen: {text:?})"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Click the first element matching `css` (as a user would: its `click()`).
    pub async fn click(&self, css: &str) -> Result<(), BrowserError> {
        let found = self
            .eval(&format!(
                "const e = document.querySelector({css:?}); if (!e) return false; e.click(); return true"
            ))
            .await?;
        if found == json!(true) {
            Ok(())
        } else {
            Err(BrowserError::NoElement(css.to_owned()))
        }
    }

    /// Press and release one key where the focus is (a real key event: it types
    /// into a focused text field).
    pub async fn press_key(&self, key: char) -> Result<(), BrowserError> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        Ok(self.client.perform_actions(actions).await?)
    }

    /// Go back one entry in the tab's history (the browser's Back button).
    pub async fn back(&self) -> Result<(), BrowserError> {
        Ok(self.client.back().await?)
    }

    /// Reload the page (a copied link opened afresh, once sessionStorage is cleared).
    pub async fn reload(&self) -> Result<(), BrowserError> {
        Ok(self.client.refresh().await?)
    }

    /// Save a PNG of the viewport as `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> Result<PathBuf, BrowserError> {
        let png = self.client.screenshot().await?;
        let path = dir.join(format!("{name}.png"));
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, png))
            .map_err(|source| BrowserError::Screenshot {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }

    /// End the session (the driver stops when dropped).
    pub async fn close(self) -> Result<(), BrowserError> {
        Ok(self.client.close().await?)
    }
}
