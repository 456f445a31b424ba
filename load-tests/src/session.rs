//! One client session of the live protocol: a TCP connection from a chosen
//! source address, the WebSocket handshake, `hello`, and reading frames.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// The protocol version this client speaks.
pub const PROTOCOL: u64 = 1;

pub type Ws = WebSocketStream<TcpStream>;

/// Where sessions connect, and from which source addresses.
#[derive(Clone, Debug)]
pub struct Target {
    /// The `ws://` address, as given.
    pub url: String,
    /// Its host and port, resolved.
    pub addr: SocketAddr,
    /// Connection `i` binds to `sources[i % len]` (port chosen by the
    /// kernel); empty: the kernel chooses the source address too.
    pub sources: Vec<Ipv4Addr>,
}

impl Target {
    /// Resolves `url` and checks that `source_addrs` loopback addresses can
    /// reach it.
    pub async fn resolve(url: &str, source_addrs: u8) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url).with_context(|| format!("--url {url}"))?;
        anyhow::ensure!(
            parsed.scheme() == "ws",
            "--url must be a ws:// address (this tool does not speak TLS), got {url}"
        );
        let host = parsed
            .host_str()
            .with_context(|| format!("--url {url} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .collect();
        let sources = source_addresses(source_addrs);
        let addr = if sources.is_empty() {
            addrs.first().copied()
        } else {
            addrs
                .iter()
                .copied()
                .find(|a| a.is_ipv4() && a.ip().is_loopback())
        };
        let addr = addr.with_context(|| {
            if sources.is_empty() {
                format!("{host} has no address")
            } else {
                format!(
                    "--source-addrs binds connections to 127.0.0.x, so the server must listen \
                     on an IPv4 loopback address, but {host} is {addrs:?}; use --source-addrs 0 \
                     for a remote server"
                )
            }
        })?;
        Ok(Self {
            url: url.to_string(),
            addr,
            sources,
        })
    }

    /// The source address of connection `i`.
    pub fn source(&self, i: usize) -> Option<Ipv4Addr> {
        (!self.sources.is_empty()).then(|| self.sources[i % self.sources.len()])
    }
}

/// 127.0.0.1 .. 127.0.0.k.
pub fn source_addresses(k: u8) -> Vec<Ipv4Addr> {
    (1..=k).map(|last| Ipv4Addr::new(127, 0, 0, last)).collect()
}

/// Why a session could not be opened, or ended.
#[derive(Debug)]
pub enum Failure {
    /// Creating, binding or connecting the TCP socket.
    Tcp(&'static str, std::io::Error),
    /// The WebSocket upgrade.
    Handshake(tungstenite::Error),
    /// Nothing in time.
    Timeout(&'static str),
    /// The server closed the connection (with a close frame or without).
    Closed(Option<u16>, String),
    /// The server answered a request (named) with an error code and message.
    Refused(&'static str, String, String),
    /// A frame the protocol does not allow here.
    Protocol(String),
    /// Reading or writing the WebSocket failed.
    Io(tungstenite::Error),
}

impl Failure {
    /// A short label to count failures by.
    pub fn kind(&self) -> String {
        match self {
            Failure::Tcp(stage, e) => format!("tcp {stage}: {e}"),
            Failure::Handshake(tungstenite::Error::Http(response)) => {
                format!("websocket upgrade answered HTTP {}", response.status())
            }
            Failure::Handshake(e) => format!("websocket upgrade: {e}"),
            Failure::Timeout(what) => format!("timeout: {what}"),
            Failure::Closed(Some(code), _) => format!("closed by the server: {code}"),
            Failure::Closed(None, _) => "connection closed without a close frame".into(),
            Failure::Refused(request, code, _) => format!("{request} answered {code}"),
            Failure::Protocol(what) => format!("protocol: {what}"),
            Failure::Io(e) => format!("websocket: {e}"),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Closed(_, reason) if !reason.is_empty() => {
                write!(f, "{} ({reason})", self.kind())
            }
            Failure::Refused(_, _, message) => write!(f, "{} ({message})", self.kind()),
            _ => f.write_str(&self.kind()),
        }
    }
}

/// What the server said in its `hello` reply that the tool uses.
#[derive(Clone, Debug)]
pub struct Hello {
    pub user_id: String,
    /// `limits.requests_per_sec`, when present.
    pub requests_per_sec: Option<f64>,
}

/// Opens connection `i` and says `hello` with `token`, all within `timeout`.
pub async fn open(
    target: &Target,
    i: usize,
    token: &str,
    timeout: Duration,
) -> Result<(Ws, Hello), Failure> {
    tokio::time::timeout(timeout, async {
        let mut ws = connect(target, target.source(i)).await?;
        let hello = hello(&mut ws, token).await?;
        Ok((ws, hello))
    })
    .await
    .unwrap_or(Err(Failure::Timeout("connect and hello")))
}

/// TCP from `source` (any port), then the WebSocket upgrade.
pub async fn connect(target: &Target, source: Option<Ipv4Addr>) -> Result<Ws, Failure> {
    let socket = match target.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| Failure::Tcp("socket", e))?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(IpAddr::V4(ip), 0))
            .map_err(|e| Failure::Tcp("bind", e))?;
    }
    let stream = socket
        .connect(target.addr)
        .await
        .map_err(|e| Failure::Tcp("connect", e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| Failure::Tcp("nodelay", e))?;
    // Small buffers: thousands of mostly idle connections live in this process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(target.url.as_str(), stream, Some(config))
            .await
            .map_err(Failure::Handshake)?;
    Ok(ws)
}

/// Sends `hello` and waits for its reply.
pub async fn hello(ws: &mut Ws, token: &str) -> Result<Hello, Failure> {
    send(
        ws,
        &json!({"id": "hello", "type": "hello", "data": {"protocol": PROTOCOL, "token": token}}),
    )
    .await?;
    loop {
        let frame = next_json(ws).await?;
        match frame["type"].as_str() {
            Some("reply") if frame["id"] == "hello" => return hello_reply(&frame),
            Some("reply") => {
                return Err(Failure::Protocol(format!(
                    "a reply to an unknown request before the hello reply: {frame}"
                )))
            }
            // The protocol sends events only after the hello reply; a
            // server that does otherwise is reported when it matters.
            _ => continue,
        }
    }
}

fn hello_reply(frame: &Value) -> Result<Hello, Failure> {
    if frame["ok"] != true {
        return Err(refusal("hello", frame));
    }
    let data = &frame["data"];
    let user_id = data["user_id"]
        .as_str()
        .ok_or_else(|| Failure::Protocol(format!("hello reply without data.user_id: {frame}")))?;
    Ok(Hello {
        user_id: user_id.to_string(),
        requests_per_sec: data["limits"]["requests_per_sec"].as_f64(),
    })
}

/// The error of a reply with `"ok": false` to `request`.
pub fn refusal(request: &'static str, frame: &Value) -> Failure {
    let error = &frame["error"];
    Failure::Refused(
        request,
        error["code"].as_str().unwrap_or("(no code)").to_string(),
        error["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// Sends one JSON text frame.
pub async fn send(ws: &mut Ws, frame: &Value) -> Result<(), Failure> {
    ws.send(Message::text(frame.to_string()))
        .await
        .map_err(Failure::Io)
}

/// The next JSON frame; pings and pongs are skipped (tungstenite answers
/// pings by itself while the stream is read).
pub async fn next_json(ws: &mut Ws) -> Result<Value, Failure> {
    loop {
        let message = ws.next().await;
        if let Some(frame) = decode(message)? {
            return Ok(frame);
        }
    }
}

/// What one read gave: a JSON frame, nothing of interest (ping, pong), or
/// the end of the session.
pub fn decode(
    message: Option<Result<Message, tungstenite::Error>>,
) -> Result<Option<Value>, Failure> {
    match message {
        None => Err(Failure::Closed(None, String::new())),
        Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) => {
            Err(Failure::Closed(None, String::new()))
        }
        Some(Err(e)) => Err(Failure::Io(e)),
        Some(Ok(Message::Text(text))) => serde_json::from_str(text.as_str())
            .map(Some)
            .map_err(|e| Failure::Protocol(format!("a text frame that is not JSON ({e})"))),
        Some(Ok(Message::Binary(_))) => Err(Failure::Protocol("a binary frame".into())),
        Some(Ok(Message::Close(frame))) => Err(match frame {
            Some(frame) => Failure::Closed(Some(frame.code.into()), frame.reason.to_string()),
            None => Failure::Closed(None, String::new()),
        }),
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(None),
    }
}

/// Waits for `until` while reading (and so answering pings on) the
/// connection; frames that arrive meanwhile are dropped. Fails if the
/// session ends first.
pub async fn read_until<F: Future>(ws: &mut Ws, until: F) -> Result<F::Output, Failure> {
    tokio::pin!(until);
    loop {
        tokio::select! {
            out = &mut until => return Ok(out),
            message = ws.next() => { decode(message)?; }
        }
    }
}

/// Closes with 1000 and waits (briefly) for the server's close frame.
pub async fn close(mut ws: Ws) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "load test done".into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A stand-in server: accepts one connection and answers `hello` the
    /// way the protocol says, refusing the token `bad` with close 4401.
    async fn fake_server() -> (SocketAddr, tokio::task::JoinHandle<SocketAddr>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (stream, peer) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            let Some(Ok(Message::Text(text))) = ws.next().await else {
                panic!("no hello")
            };
            let hello: Value = serde_json::from_str(text.as_str()).unwrap();
            assert_eq!(hello["type"], "hello");
            assert_eq!(hello["data"]["protocol"], 1);
            if hello["data"]["token"] == "bad" {
                let frame = CloseFrame {
                    code: CloseCode::from(4401),
                    reason: "not authenticated".into(),
                };
                ws.close(Some(frame)).await.unwrap();
            } else {
                let reply = json!({"type": "reply", "id": hello["id"], "ok": true,
                    "data": {"user_id": "u-1", "cursor": 0, "unread": 0, "heartbeat_secs": 30,
                             "limits": {"max_frame_bytes": 65536, "requests_per_sec": 20, "burst": 40}}});
                ws.send(Message::text(reply.to_string())).await.unwrap();
                // Until the client closes.
                while let Some(Ok(_)) = ws.next().await {}
            }
            peer
        });
        (addr, task)
    }

    fn target(addr: SocketAddr, sources: u8) -> Target {
        Target {
            url: format!("ws://{addr}/ws"),
            addr,
            sources: source_addresses(sources),
        }
    }

    #[tokio::test]
    async fn hello_opens_a_session_from_the_chosen_source_address() {
        let (addr, server) = fake_server().await;
        // Connection 2 of 3 sources binds to 127.0.0.3.
        let (ws, hello) = open(&target(addr, 3), 2, "good", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(hello.user_id, "u-1");
        assert_eq!(hello.requests_per_sec, Some(20.0));
        close(ws).await;
        let peer = server.await.unwrap();
        assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
    }

    #[tokio::test]
    async fn a_refused_token_reports_the_close_code() {
        let (addr, server) = fake_server().await;
        let error = open(&target(addr, 0), 0, "bad", Duration::from_secs(5))
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(error.kind(), "closed by the server: 4401");
        assert_eq!(
            error.to_string(),
            "closed by the server: 4401 (not authenticated)"
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_endpoint_is_reported_as_such() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0; 1024];
            let _ = stream.read(&mut buf).await.unwrap();
            stream
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        let error = open(&target(addr, 1), 0, "good", Duration::from_secs(5))
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            error.kind(),
            "websocket upgrade answered HTTP 404 Not Found"
        );
    }

    #[tokio::test]
    async fn urls_are_checked() {
        let target = Target::resolve("ws://127.0.0.1:8080/ws", 8).await.unwrap();
        assert_eq!(target.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(target.source(9), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(Target::resolve("wss://127.0.0.1/ws", 8).await.is_err());
        assert!(Target::resolve("http://127.0.0.1/ws", 8).await.is_err());
        let no_sources = Target::resolve("ws://localhost:9/ws", 0).await.unwrap();
        assert_eq!(no_sources.source(0), None);
    }
}
