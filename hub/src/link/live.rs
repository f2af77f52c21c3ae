//! Live sessions on spoke streams (`live-sessions.v1`): the API opens one on the stream of a cluster this replica holds; the session forwards the spoke's chunks to its reader, grants the spoke credit as the reader consumes them (so a slow reader slows the spoke, never the stream), and cancels it at the spoke when the reader goes away.
//!
//! ```text
//!  API ─open─► Registry ─LiveControl::Open─► session ─LiveOpen─► spoke
//!  API ◄─LiveEvent (unbounded; bytes bounded by the window)─ session ◄─LiveChunk / LiveEnd─ spoke
//!  LiveStream::next ─LiveControl::Credit─► session ─LiveCredit─► spoke      drop ─Cancel─► LiveCancel
//!  exec: LiveStream::input ─LiveControl::Input─► session ─LiveInput─► spoke ─LiveCredit (input taken)─► LiveEvent::InputCredit
//! ```

use std::collections::HashMap;
use std::time::Duration;

use edgecd_proto::v1;
use tokio::sync::mpsc;

/// Bytes a spoke may send on one session before it gets credit.
pub const WINDOW: u32 = 256 * 1024;
/// Bytes of exec input (stdin; a resize or the end of stdin counts one) the hub sends ahead of the spoke's
/// input credit.
pub const INPUT_WINDOW: usize = 64 * 1024;
/// Sessions one stream carries at once.
pub const MAX_SESSIONS_PER_STREAM: usize = 64;

/// What the API asks a spoke for.
#[derive(Debug, Clone)]
pub struct LiveRequest {
    /// The app as its spoke names it.
    pub app: v1::AppRef,
    pub request: v1::live_open::Request,
    pub max_bytes: u64,
    pub max_duration: Duration,
}

/// What a session yields.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    Chunk(v1::LiveChunk),
    End(v1::LiveEnd),
    /// Exec: the spoke passed this many bytes of input to the command.
    InputCredit(u32),
}

/// Why a session could not be opened here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    #[error("no stream of cluster {cluster} is held by this hub replica")]
    NotHere { cluster: String },
}

/// Messages from the API side to a session.
#[derive(Debug)]
pub(crate) enum LiveControl {
    Open {
        id: String,
        request: Box<LiveRequest>,
        reply: mpsc::UnboundedSender<LiveEvent>,
    },
    Credit {
        id: String,
        bytes: u32,
    },
    Cancel {
        id: String,
    },
    Input {
        input: v1::LiveInput,
    },
}

/// What the spoke of a stream agreed to serve.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LiveSupport {
    /// `live-sessions.v1`.
    pub sessions: bool,
    /// `live-exec.v1`.
    pub exec: bool,
}

/// An open session, as the API reads it. Dropped, it cancels the session at the spoke.
#[derive(Debug)]
pub struct LiveStream {
    id: String,
    events: mpsc::UnboundedReceiver<LiveEvent>,
    control: mpsc::Sender<LiveControl>,
    ended: bool,
}

impl LiveStream {
    pub(crate) fn new(
        id: String,
        events: mpsc::UnboundedReceiver<LiveEvent>,
        control: mpsc::Sender<LiveControl>,
    ) -> Self {
        Self {
            id,
            events,
            control,
            ended: false,
        }
    }

    /// The next chunk or the end; `None` when the stream carrying the session ended first. Each chunk read
    /// gives its bytes back to the spoke as credit.
    pub async fn next(&mut self) -> Option<LiveEvent> {
        let event = self.events.recv().await;
        match &event {
            Some(LiveEvent::Chunk(chunk)) => {
                let bytes = chunk.data.len()
                    + chunk
                        .events
                        .iter()
                        .map(edgecd_proto::convert::live_event_bytes)
                        .sum::<usize>();
                if bytes > 0 {
                    // A full control queue only delays credit: the next chunk's grant carries on.
                    let _ = self.control.try_send(LiveControl::Credit {
                        id: self.id.clone(),
                        bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
                    });
                }
            }
            Some(LiveEvent::End(_)) | None => self.ended = true,
            Some(LiveEvent::InputCredit(_)) => {}
        }
        event
    }

    /// Sends exec input to the spoke; the caller keeps within [`INPUT_WINDOW`] of the spoke's input credit.
    /// `false`: the stream carrying the session is gone.
    pub async fn input(&self, input: v1::live_input::Input) -> bool {
        self.control
            .send(LiveControl::Input {
                input: v1::LiveInput {
                    session_id: self.id.clone(),
                    input: Some(input),
                },
            })
            .await
            .is_ok()
    }
}

/// Bytes a piece of exec input counts against the spoke's input credit.
pub use edgecd_proto::convert::live_input_cost as input_cost;

impl Drop for LiveStream {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.control.try_send(LiveControl::Cancel {
                id: std::mem::take(&mut self.id),
            });
        }
    }
}

/// A session's side of its live sessions: the reader of each, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    readers: HashMap<String, mpsc::UnboundedSender<LiveEvent>>,
}

impl Sessions {
    /// Handles one control message: what to send the spoke, if anything. `supported`: the spoke agreed to
    /// `live-sessions.v1`.
    pub(crate) fn control(
        &mut self,
        control: LiveControl,
        cluster: &str,
        support: LiveSupport,
    ) -> Option<v1::hub_message::Body> {
        use v1::hub_message::Body;
        match control {
            LiveControl::Open { id, request, reply } => {
                self.readers.retain(|_, r| !r.is_closed());
                let refuse = |code: v1::LiveEndCode, message: String| {
                    let _ = reply.send(LiveEvent::End(v1::LiveEnd {
                        session_id: id.clone(),
                        code: code as i32,
                        message,
                        exit_code: None,
                    }));
                    None
                };
                if !support.sessions {
                    return refuse(
                        v1::LiveEndCode::Unspecified,
                        format!(
                            "the spoke of cluster {cluster} does not serve live sessions (live-sessions.v1): upgrade it"
                        ),
                    );
                }
                if !support.exec && matches!(request.request, v1::live_open::Request::Exec(_)) {
                    return refuse(
                        v1::LiveEndCode::Unspecified,
                        format!(
                            "the spoke of cluster {cluster} does not serve exec sessions (live-exec.v1): upgrade it"
                        ),
                    );
                }
                if self.readers.len() >= MAX_SESSIONS_PER_STREAM {
                    return refuse(
                        v1::LiveEndCode::Limit,
                        format!(
                            "cluster {cluster} already has {MAX_SESSIONS_PER_STREAM} live sessions open; try again later"
                        ),
                    );
                }
                self.readers.insert(id.clone(), reply);
                let request = *request;
                Some(Body::LiveOpen(v1::LiveOpen {
                    session_id: id,
                    app: Some(request.app),
                    window: WINDOW,
                    max_bytes: request.max_bytes,
                    max_duration: Some(edgecd_proto::convert::duration(request.max_duration)),
                    request: Some(request.request),
                }))
            }
            LiveControl::Credit { id, bytes } if self.readers.contains_key(&id) => {
                Some(Body::LiveCredit(v1::LiveCredit {
                    session_id: id,
                    bytes,
                }))
            }
            LiveControl::Credit { .. } => None,
            LiveControl::Cancel { id } => self
                .readers
                .remove(&id)
                .map(|_| Body::LiveCancel(v1::LiveCancel { session_id: id })),
            LiveControl::Input { input } if self.readers.contains_key(&input.session_id) => {
                Some(Body::LiveInput(input))
            }
            LiveControl::Input { .. } => None,
        }
    }

    /// The spoke passed input of an exec session to its command.
    pub(crate) fn input_credit(&mut self, credit: &v1::LiveCredit) {
        if let Some(reader) = self.readers.get(&credit.session_id) {
            let _ = reader.send(LiveEvent::InputCredit(credit.bytes));
        }
    }

    /// A chunk from the spoke; `Some(cancel)` when no reader takes it (gone, or never known here): the spoke is
    /// told to stop rather than wait for credit that will not come.
    pub(crate) fn chunk(&mut self, chunk: v1::LiveChunk) -> Option<v1::hub_message::Body> {
        let id = chunk.session_id.clone();
        let delivered = self
            .readers
            .get(&id)
            .is_some_and(|reader| reader.send(LiveEvent::Chunk(chunk)).is_ok());
        if delivered {
            return None;
        }
        self.readers.remove(&id);
        Some(v1::hub_message::Body::LiveCancel(v1::LiveCancel {
            session_id: id,
        }))
    }

    /// The spoke ended a session.
    pub(crate) fn end(&mut self, end: v1::LiveEnd) {
        if let Some(reader) = self.readers.remove(&end.session_id) {
            let _ = reader.send(LiveEvent::End(end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: LiveSupport = LiveSupport {
        sessions: true,
        exec: true,
    };

    fn open(id: &str) -> (LiveControl, mpsc::UnboundedReceiver<LiveEvent>) {
        let (reply, events) = mpsc::unbounded_channel();
        let request = LiveRequest {
            app: v1::AppRef {
                project: "default".into(),
                name: "web".into(),
            },
            request: v1::live_open::Request::Manifest(v1::LiveManifestRequest::default()),
            max_bytes: 1024,
            max_duration: Duration::from_secs(5),
        };
        (
            LiveControl::Open {
                id: id.into(),
                request: Box::new(request),
                reply,
            },
            events,
        )
    }

    #[test]
    fn sessions_open_forward_and_cancel() {
        let mut sessions = Sessions::default();
        let (control, mut events) = open("s1");
        let Some(v1::hub_message::Body::LiveOpen(sent)) = sessions.control(control, "edge-1", BOTH)
        else {
            panic!("no LiveOpen");
        };
        assert_eq!((sent.session_id.as_str(), sent.window), ("s1", WINDOW));
        let chunk = v1::LiveChunk {
            session_id: "s1".into(),
            data: b"hello\n".to_vec(),
            ..Default::default()
        };
        assert!(sessions.chunk(chunk.clone()).is_none());
        assert!(matches!(events.try_recv(), Ok(LiveEvent::Chunk(c)) if c.data == b"hello\n"));
        // A chunk of a session no reader holds here is dropped, and the spoke told to stop it.
        let stray = v1::LiveChunk {
            session_id: "nope".into(),
            ..chunk.clone()
        };
        assert!(matches!(
            sessions.chunk(stray),
            Some(v1::hub_message::Body::LiveCancel(c)) if c.session_id == "nope"
        ));
        // The reader went away: the next chunk cancels the session at the spoke.
        drop(events);
        assert!(matches!(
            sessions.chunk(chunk),
            Some(v1::hub_message::Body::LiveCancel(c)) if c.session_id == "s1"
        ));
        assert!(
            sessions
                .control(
                    LiveControl::Credit {
                        id: "s1".into(),
                        bytes: 6
                    },
                    "edge-1",
                    BOTH
                )
                .is_none()
        );
    }

    #[test]
    fn exec_input_goes_to_open_sessions_and_credit_comes_back() {
        let mut sessions = Sessions::default();
        let (control, mut events) = open("s1");
        assert!(sessions.control(control, "edge-1", BOTH).is_some());
        let input = |id: &str| LiveControl::Input {
            input: v1::LiveInput {
                session_id: id.into(),
                input: Some(v1::live_input::Input::Stdin(b"ls\n".to_vec())),
            },
        };
        assert!(matches!(
            sessions.control(input("s1"), "edge-1", BOTH),
            Some(v1::hub_message::Body::LiveInput(i)) if i.session_id == "s1"
        ));
        // Input for a session not open here goes nowhere.
        assert!(sessions.control(input("nope"), "edge-1", BOTH).is_none());
        sessions.input_credit(&v1::LiveCredit {
            session_id: "s1".into(),
            bytes: 3,
        });
        assert!(matches!(events.try_recv(), Ok(LiveEvent::InputCredit(3))));
        assert_eq!(input_cost(&v1::live_input::Input::Stdin(Vec::new())), 1);
        assert_eq!(
            input_cost(&v1::live_input::Input::Resize(v1::TerminalSize::default())),
            1
        );
    }

    #[test]
    fn exec_needs_a_spoke_that_serves_it() {
        let mut sessions = Sessions::default();
        let (reply, mut events) = mpsc::unbounded_channel();
        let control = LiveControl::Open {
            id: "x1".into(),
            request: Box::new(LiveRequest {
                app: v1::AppRef {
                    project: "default".into(),
                    name: "web".into(),
                },
                request: v1::live_open::Request::Exec(v1::LiveExecRequest::default()),
                max_bytes: 1024,
                max_duration: Duration::from_secs(5),
            }),
            reply,
        };
        let without_exec = LiveSupport {
            sessions: true,
            exec: false,
        };
        assert!(sessions.control(control, "edge-1", without_exec).is_none());
        let Ok(LiveEvent::End(end)) = events.try_recv() else {
            panic!("not ended");
        };
        assert!(end.message.contains("live-exec.v1"), "{}", end.message);
    }

    #[test]
    fn an_old_spoke_or_too_many_sessions_are_answered_at_once() {
        let mut sessions = Sessions::default();
        let (control, mut events) = open("s1");
        assert!(
            sessions
                .control(
                    control,
                    "edge-1",
                    LiveSupport {
                        sessions: false,
                        exec: false
                    }
                )
                .is_none()
        );
        let Ok(LiveEvent::End(end)) = events.try_recv() else {
            panic!("not ended");
        };
        assert!(end.message.contains("upgrade"), "{}", end.message);
        let mut open_ones = Vec::new();
        for i in 0..MAX_SESSIONS_PER_STREAM {
            let (control, events) = open(&format!("s{i}"));
            open_ones.push(events);
            assert!(sessions.control(control, "edge-1", BOTH).is_some());
        }
        let (control, mut events) = open("one-more");
        assert!(sessions.control(control, "edge-1", BOTH).is_none());
        assert!(
            matches!(events.try_recv(), Ok(LiveEvent::End(e)) if e.code == v1::LiveEndCode::Limit as i32)
        );
    }
}
