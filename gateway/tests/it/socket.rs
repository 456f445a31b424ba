//! A client of the live socket for tests: says hello, sends requests and
//! waits for their replies, and collects events. Every wait is bounded.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::helpers::TestApp;

/// How long a test waits for one frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Socket {
    stream: WebSocketStream<TcpStream>,
    next_id: u64,
    /// Frames read while waiting for something else, oldest first.
    backlog: VecDeque<Value>,
    /// The highest event cursor seen.
    pub cursor: i64,
}

impl Socket {
    /// Opens `/ws` without saying hello.
    pub async fn open(app: &TestApp) -> Self {
        Self::open_with(app, None).await
    }

    /// Opens `/ws`, optionally with a small receive buffer (a client that
    /// will stop reading).
    pub async fn open_with(app: &TestApp, recv_buffer: Option<u32>) -> Self {
        let addr = app.address.trim_start_matches("http://").to_string();
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let tcp = socket.connect(addr.parse().unwrap()).await.unwrap();
        let (stream, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), tcp)
            .await
            .unwrap();
        Self {
            stream,
            next_id: 0,
            backlog: VecDeque::new(),
            cursor: 0,
        }
    }

    /// Opens `/ws` and says hello with `token`; panics unless it succeeds.
    pub async fn connect(app: &TestApp, token: &str) -> (Self, Value) {
        Self::resume(app, token, None).await
    }

    /// Says hello with a cursor to resume from.
    pub async fn resume(app: &TestApp, token: &str, cursor: Option<i64>) -> (Self, Value) {
        let mut socket = Self::open(app).await;
        let reply = socket.hello(token, cursor).await;
        assert_eq!(reply["ok"], true, "hello failed: {reply}");
        let data = reply["data"].clone();
        (socket, data)
    }

    /// Says hello on an open socket (protocol 1) and returns the reply
    /// frame, whether it succeeded or not. On success the socket's
    /// `cursor` is the one resumed from, or the server's head without one.
    pub async fn hello(&mut self, token: &str, cursor: Option<i64>) -> Value {
        let mut data = json!({ "protocol": 1, "token": token });
        if let Some(cursor) = cursor {
            data["cursor"] = json!(cursor);
        }
        let reply = self.request("hello", data).await;
        if reply["ok"] == true {
            self.cursor = cursor.unwrap_or_else(|| reply["data"]["cursor"].as_i64().unwrap());
        }
        reply
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_frame(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    /// Sends a request without waiting; returns its id.
    pub async fn start(&mut self, kind: &str, data: Value) -> String {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        let frame = json!({ "id": id, "type": kind, "data": data });
        self.send_text(&frame.to_string()).await;
        id
    }

    /// Sends a request and returns its reply frame.
    pub async fn request(&mut self, kind: &str, data: Value) -> Value {
        let id = self.start(kind, data).await;
        self.reply(&id).await
    }

    /// Sends a request and returns the reply's data; panics on an error.
    pub async fn ok(&mut self, kind: &str, data: Value) -> Value {
        let reply = self.request(kind, data).await;
        assert_eq!(reply["ok"], true, "{kind} failed: {reply}");
        reply["data"].clone()
    }

    /// Sends a request and returns the error code it was refused with.
    pub async fn refused(&mut self, kind: &str, data: Value) -> String {
        let reply = self.request(kind, data).await;
        assert_eq!(reply["ok"], false, "{kind} should fail: {reply}");
        reply["error"]["code"].as_str().unwrap().to_string()
    }

    /// The reply to request `id`; other frames wait in the backlog.
    pub async fn reply(&mut self, id: &str) -> Value {
        self.first(|f| f["type"] == "reply" && f["id"] == id).await
    }

    /// The next reply whose id is null (to a frame that was not a request).
    pub async fn anonymous_reply(&mut self) -> Value {
        self.first(|f| f["type"] == "reply" && f["id"].is_null())
            .await
    }

    /// The next event named `name` (earlier events of other kinds stay in
    /// the backlog).
    pub async fn event(&mut self, name: &str) -> Value {
        self.first(|f| f["type"] == "event" && f["event"] == name)
            .await
    }

    /// The oldest frame, from the backlog or then the socket, that `wanted`
    /// accepts; frames read on the way wait in the backlog.
    async fn first(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&wanted) {
            return self.backlog.remove(i).unwrap();
        }
        loop {
            let frame = self.read().await;
            if wanted(&frame) {
                return frame;
            }
            self.backlog.push_back(frame);
        }
    }

    /// Every event frame in arrival order, backlog first, until `done`
    /// says the collection is complete.
    pub async fn events_until(&mut self, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
        let mut events: Vec<Value> = Vec::new();
        let mut rest = VecDeque::new();
        for frame in std::mem::take(&mut self.backlog) {
            if frame["type"] == "event" {
                events.push(frame);
            } else {
                rest.push_back(frame);
            }
        }
        self.backlog = rest;
        while !done(&events) {
            let frame = self.read().await;
            if frame["type"] == "event" {
                events.push(frame);
            } else {
                self.backlog.push_back(frame);
            }
        }
        events
    }

    /// How many events named `name` wait in the backlog (read while
    /// waiting for something else).
    pub fn backlog_events(&self, name: &str) -> usize {
        self.backlog
            .iter()
            .filter(|f| f["type"] == "event" && f["event"] == name)
            .count()
    }

    /// Frames read while waiting for something else and not taken yet.
    pub fn backlog(&self) -> &VecDeque<Value> {
        &self.backlog
    }

    /// Forgets the events in the backlog (a client that does not care
    /// about them, in a long run); returns how many there were.
    pub fn drop_events(&mut self) -> usize {
        let before = self.backlog.len();
        self.backlog.retain(|f| f["type"] != "event");
        before - self.backlog.len()
    }

    /// Reads one JSON frame, tracking the highest cursor.
    pub async fn read(&mut self) -> Value {
        match self.next_or_close().await {
            Ok(frame) => frame,
            Err(code) => panic!("closed by the server (code {code:?})"),
        }
    }

    /// Reads one JSON frame (tracking the highest cursor), or the close
    /// code once the server closed: `Err(None)` when the connection ended
    /// without a close frame.
    pub async fn next_or_close(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let next = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("no frame within the timeout");
            match next {
                Some(Ok(Message::Text(text))) => return Ok(self.frame(text.as_str())),
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// Reads for `duration` without sending anything, the way an idle
    /// client listens: frames go to the backlog, and every WebSocket ping
    /// is answered (tungstenite answers while reading). Returns how many
    /// pings arrived; panics if the connection ends.
    pub async fn listen(&mut self, duration: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + duration;
        let mut pings = 0;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(next) => next,
                Err(_) => return pings,
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    let frame = self.frame(text.as_str());
                    self.backlog.push_back(frame);
                }
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(Message::Close(frame))) => panic!("closed by the server: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("reading the socket failed: {e}"),
                None => panic!("the socket closed"),
            }
        }
    }

    /// A text frame as JSON; its cursor raises the highest seen.
    fn frame(&mut self, text: &str) -> Value {
        let frame: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("a frame that is not JSON ({e}): {text}"));
        if let Some(cursor) = frame["cursor"].as_i64() {
            self.cursor = self.cursor.max(cursor);
        }
        frame
    }

    /// Reads until the server closes; returns the close code (frames before
    /// it are dropped). `None` when the connection ended without one.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let next = tokio::time::timeout(FRAME_TIMEOUT * 3, self.stream.next())
                .await
                .expect("the server did not close the socket");
            match next {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Closes from the client side, politely.
    pub async fn close(mut self) {
        let _ = self
            .stream
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
    }

    /// Drops the connection without a close frame, as a lost network does.
    pub fn cut(self) {
        drop(self);
    }
}
