//! A TCP relay in front of the hub that can partition its spokes: while cut, no byte passes in either direction and nothing is reset (a black hole, as a dead link looks); when healed, the held connections are closed and new ones pass.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A listening relay to one of several targets (the hub replicas, tried in turn per connection).
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    targets: Arc<Mutex<Vec<SocketAddr>>>,
    task: JoinHandle<()>,
}

impl Relay {
    pub async fn start(targets: Vec<SocketAddr>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the relay")?;
        let addr = listener.local_addr()?;
        let (cut, cut_rx) = watch::channel(false);
        let targets = Arc::new(Mutex::new(targets));
        let shared = Arc::clone(&targets);
        let task = tokio::spawn(async move {
            let mut next = 0_usize;
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    // Out of descriptors, say: no busy loop.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let list = shared
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if list.is_empty() {
                    continue;
                }
                let first = next % list.len();
                next = next.wrapping_add(1);
                tokio::spawn(forward(inbound, list, first, cut_rx.clone()));
            }
        });
        Ok(Self {
            addr,
            cut,
            targets,
            task,
        })
    }

    /// The endpoint spokes dial (`http://127.0.0.1:port`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Partitions: traffic stops both ways, connections stay open.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    /// Heals: the connections held during the cut are closed, new ones pass.
    pub fn heal(&self) {
        let _ = self.cut.send(false);
    }

    /// Replaces the targets (a replica gone, another added).
    pub fn set_targets(&self, targets: Vec<SocketAddr>) {
        *self.targets.lock().unwrap_or_else(PoisonError::into_inner) = targets;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays one connection: to the first target that accepts, starting at `first`.
async fn forward(
    mut inbound: TcpStream,
    targets: Vec<SocketAddr>,
    first: usize,
    mut cut: watch::Receiver<bool>,
) {
    let _ = inbound.set_nodelay(true);
    if *cut.borrow() {
        // Opened during the cut: held silent until the heal, then closed.
        let _ = cut.wait_for(|c| !*c).await;
        return;
    }
    let mut outbound = None;
    for i in 0..targets.len() {
        if let Ok(stream) = TcpStream::connect(targets[(first + i) % targets.len()]).await {
            outbound = Some(stream);
            break;
        }
    }
    let Some(mut outbound) = outbound else {
        return;
    };
    let _ = outbound.set_nodelay(true);
    let was_cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
        _ = cut.wait_for(|c| *c) => true,
    };
    if was_cut {
        // Cut: both sockets stay open and unread until the heal.
        let _ = cut.wait_for(|c| !*c).await;
    }
}
