//! What every process of a run agrees on: which connection is in which channel, which event
//! goes where, how an event carries its identity and send time, and the messages between the
//! driving process and its subscriber processes.

use memchr::memmem;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// What the subscribers connect to.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Herald gateways (`/ws`), events POSTed to the REST adapter.
    Herald,
    /// nats-server's WebSocket listener, messages published straight to NATS.
    NatsWs,
    /// Herald gateways speaking the Pusher protocol (`/app/{key}`), events POSTed to the REST
    /// adapter (to the app's channels under their Herald names).
    Pusher,
}

impl Target {
    /// The name used in results.
    pub fn name(self) -> &'static str {
        match self {
            Target::Herald => "herald",
            Target::NatsWs => "nats-ws",
            Target::Pusher => "pusher",
        }
    }
}

/// Channels and who is in them. Connection `i` is in the `per_conn` channels `(i + x) % channels`
/// for `x < per_conn`; event `g` goes to channel `g % channels`, or to everyone on a broadcast.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Layout {
    /// Distinguishes this run's channels, users and subjects from earlier runs'.
    pub run: String,
    /// Number of channels.
    pub channels: u32,
    /// Channels each connection joins.
    pub per_conn: u32,
    /// Events go to every identified connection (`targets: {broadcast: true}`).
    pub broadcast: bool,
    /// Event `g` goes to the user of connection `channel_of_event(g)` instead of to that
    /// channel (with one member per channel, the same connection receives it).
    #[serde(default)]
    pub to_users: bool,
    /// Set when the subscribers speak Pusher: the app id whose channels events go to.
    #[serde(default)]
    pub pusher_app: Option<String>,
}

impl Layout {
    /// The Herald channel `j` (a Pusher app's channel under its Herald name).
    pub fn channel(&self, j: u32) -> String {
        match &self.pusher_app {
            Some(app) => format!("pusher:{app}:{}", self.pusher_channel(j)),
            None => self.pusher_channel(j),
        }
    }

    /// Channel `j` as subscribers name it (Pusher subscribers: without the app).
    pub fn pusher_channel(&self, j: u32) -> String {
        format!("bench-{}-{j}", self.run)
    }

    /// The NATS subject standing for channel `j`.
    pub fn subject(&self, j: u32) -> String {
        format!("bench.{}.{j}", self.run)
    }

    /// The NATS subject standing for a broadcast.
    pub fn broadcast_subject(&self) -> String {
        format!("bench.{}.all", self.run)
    }

    /// The user of connection `i`.
    pub fn user(&self, i: u64) -> String {
        format!("u{}-{i}", self.run)
    }

    /// The channels connection `i` joins.
    pub fn channels_of(&self, i: u64) -> impl Iterator<Item = u32> + '_ {
        let n = u64::from(self.channels.max(1));
        (0..u64::from(self.per_conn.min(self.channels))).map(move |x| ((i + x) % n) as u32)
    }

    /// The channel of event `g`.
    pub fn channel_of_event(&self, g: u64) -> u32 {
        (g % u64::from(self.channels.max(1))) as u32
    }

    /// Whether connection `i` should receive event `g`.
    pub fn receives(&self, i: u64, g: u64) -> bool {
        if self.broadcast {
            return true;
        }
        let n = u64::from(self.channels.max(1));
        let c = g % n;
        (c + n - i % n) % n < u64::from(self.per_conn.min(self.channels))
    }

    /// Events connection `i` should receive when events `0..sent` were accepted but `rejected`.
    pub fn expected(&self, i: u64, sent: u64, rejected: &[u64]) -> u64 {
        let refused = rejected
            .iter()
            .filter(|&&g| g < sent && self.receives(i, g))
            .count() as u64;
        if self.broadcast {
            return sent - refused;
        }
        let n = u64::from(self.channels.max(1));
        let total: u64 = self
            .channels_of(i)
            .map(|c| sent / n + u64::from(u64::from(c) < sent % n))
            .sum();
        total - refused
    }
}

/// The identity an event carries in its payload: global number `g` (0..events), the
/// publishing worker `w`, that worker's sequence number `k`, and the send time `t` (ns, on
/// the shared monotonic clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Global event number.
    pub g: u64,
    /// Publisher worker.
    pub w: u64,
    /// Sequence number within the worker.
    pub k: u64,
    /// Send time, ns.
    pub t: u64,
}

const MARK_KEY: &[u8] = b"\"b\":\"";
/// The mark inside a JSON string (a Pusher frame's `data`).
const ESCAPED_MARK_KEY: &[u8] = b"\\\"b\\\":\\\"";
/// Built once: searching for the mark is on the subscribers' hot path.
static MARK_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(MARK_KEY));
static ESCAPED_MARK_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(ESCAPED_MARK_KEY));

/// The JSON payload of an event: `{"b":"g.w.k.t","p":"xx…"}`, padded to about `bytes` bytes.
pub fn payload(mark: Mark, bytes: usize) -> String {
    let head = format!(
        "{{\"b\":\"{}.{}.{}.{}\",\"p\":\"",
        mark.g, mark.w, mark.k, mark.t
    );
    let pad = bytes.saturating_sub(head.len() + 2);
    let mut text = String::with_capacity(head.len() + pad + 2);
    text.push_str(&head);
    text.extend(std::iter::repeat_n('x', pad));
    text.push_str("\"}");
    text
}

/// Finds the mark in a received frame (a Herald `event` frame or a raw NATS payload).
pub fn find_mark(frame: &[u8]) -> Option<Mark> {
    // A raw NATS payload starts with the mark; a Herald frame has it inside.
    let start =
        if frame.starts_with(b"{") && frame.get(1..).is_some_and(|f| f.starts_with(MARK_KEY)) {
            1 + MARK_KEY.len()
        } else if let Some(at) = MARK_FINDER.find(frame) {
            at + MARK_KEY.len()
        } else {
            ESCAPED_MARK_FINDER.find(frame)? + ESCAPED_MARK_KEY.len()
        };
    let mut fields = [0u64; 4];
    let mut field = 0;
    let mut digits = 0;
    for &b in frame.get(start..)? {
        match b {
            b'0'..=b'9' => {
                fields[field] = fields[field]
                    .checked_mul(10)?
                    .checked_add(u64::from(b - b'0'))?;
                digits += 1;
            }
            b'.' if field < 3 && digits > 0 => {
                field += 1;
                digits = 0;
            }
            b'"' | b'\\' if field == 3 && digits > 0 => {
                return Some(Mark {
                    g: fields[0],
                    w: fields[1],
                    k: fields[2],
                    t: fields[3],
                });
            }
            _ => return None,
        }
    }
    None
}

/// What a subscriber process is asked to do (first line on its stdin).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct WorkerSpec {
    /// Herald or raw NATS WebSocket.
    pub target: Target,
    /// WebSocket URLs; connection `i` uses `urls[i % len]`.
    pub urls: Vec<String>,
    /// HS256 secret for tokens (Herald only).
    pub jwt_secret: String,
    /// Index of this process's first connection.
    pub first: u64,
    /// Connections this process opens.
    pub count: u64,
    /// Channels and who is in them.
    pub layout: Layout,
    /// Events the publisher will send (sizes the per-connection record of what arrived).
    pub events: u64,
    /// Publisher workers (sizes the per-connection order check).
    pub workers: u32,
    /// Source addresses to spread connections over (127.0.0.2 onward); 0 lets the kernel pick.
    pub source_addrs: u32,
    /// Connections being set up at once.
    pub connect_concurrency: usize,
    /// tungstenite read buffer per connection, bytes.
    pub read_buffer: usize,
    /// Time allowed for one connection's connect + ident + join, ms.
    pub connect_timeout_ms: u64,
    /// Time allowed for all connections to be ready, ms.
    pub ready_timeout_ms: u64,
    /// The process gives up and exits after this long, ms.
    pub deadline_ms: u64,
    /// Runtime worker threads.
    pub threads: usize,
}

/// From the driving process to a subscriber process, after `Ready`.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "snake_case")]
pub enum ToWorker {
    /// Publishing is over: events `0..sent` were sent, the `rejected` ones were not accepted.
    /// Wait up to `drain_ms` for the rest to arrive, then report.
    Finish {
        /// Events attempted.
        sent: u64,
        /// Events not accepted (or never sent).
        rejected: Vec<u64>,
        /// How long to wait for late deliveries, ms.
        drain_ms: u64,
        /// Extra wait after everything arrived, to catch duplicates, ms.
        grace_ms: u64,
    },
}

/// From a subscriber process to the driving process.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "snake_case")]
pub enum FromWorker {
    /// Every connection is set up (or failed).
    Ready(ReadyReport),
    /// Final counts.
    Result(WorkerResult),
}

/// How setting up the connections went.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ReadyReport {
    /// Connections identified and joined.
    pub ok: u64,
    /// Connections that failed.
    pub failed: u64,
    /// When the first connection started, ns.
    pub start_ns: u64,
    /// When the last one was ready, ns.
    pub end_ns: u64,
    /// The first few failures, verbatim.
    pub errors: Vec<String>,
}

/// What a subscriber process saw.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct WorkerResult {
    /// Deliveries expected by the connections that were set up.
    pub expected: u64,
    /// Distinct expected events received.
    pub delivered: u64,
    /// Expected events that never arrived.
    pub lost: u64,
    /// Events received more than once (each extra copy counts).
    pub duplicated: u64,
    /// Events that arrived after a later event of the same publisher worker.
    pub out_of_order: u64,
    /// Events received that the connection should not have got.
    pub unexpected: u64,
    /// Event frames without a readable mark.
    pub malformed: u64,
    /// `error` frames (Herald) or `-ERR` lines (NATS).
    pub error_frames: u64,
    /// Connections that closed before the end.
    pub disconnects: u64,
    /// The first few disconnect reasons.
    pub disconnect_reasons: Vec<String>,
    /// First and last receive times, ns (0 when nothing arrived).
    pub first_recv_ns: u64,
    /// Last receive time, ns.
    pub last_recv_ns: u64,
    /// Latency histogram in µs as (value, count) pairs.
    pub latency_us: Vec<(u64, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(channels: u32, per_conn: u32) -> Layout {
        Layout {
            run: "t".into(),
            channels,
            per_conn,
            broadcast: false,
            to_users: false,
            pusher_app: None,
        }
    }

    #[test]
    fn marks_round_trip_through_a_frame() {
        let mark = Mark {
            g: 12,
            w: 3,
            k: 4,
            t: 987_654_321_012,
        };
        let body = payload(mark, 100);
        assert!(body.len() >= 99 && body.len() <= 101, "{}", body.len());
        let frame = format!(
            r#"{{"type":"event","id":"a-1","event":"BENCH","payload":{body},"via":{{"channels":["c"]}}}}"#
        );
        assert_eq!(find_mark(frame.as_bytes()), Some(mark));
        // A Pusher frame carries the payload as a JSON string.
        let data = serde_json::to_string(&body).unwrap();
        let pusher = format!(r#"{{"event":"BENCH","channel":"c","data":{data}}}"#);
        assert_eq!(find_mark(pusher.as_bytes()), Some(mark));
        assert_eq!(find_mark(body.as_bytes()), Some(mark));
        assert_eq!(find_mark(br#"{"b":"1.2.3"}"#), None);
        assert_eq!(find_mark(br#"{"b":"1.2.3.x"}"#), None);
        assert_eq!(find_mark(b"nothing"), None);
    }

    #[test]
    fn expected_counts_match_receives() {
        for (n, k) in [(1, 1), (7, 2), (10, 3), (4, 4)] {
            let layout = layout(n, k);
            let rejected = [3, 5, 11, 40];
            for i in 0..20 {
                for sent in [0, 1, 9, 23, 50] {
                    let brute = (0..sent)
                        .filter(|g| !rejected.contains(g) && layout.receives(i, *g))
                        .count() as u64;
                    assert_eq!(
                        layout.expected(i, sent, &rejected),
                        brute,
                        "n={n} k={k} i={i} sent={sent}"
                    );
                }
                let joined: Vec<u32> = layout.channels_of(i).collect();
                for g in 0..30 {
                    assert_eq!(
                        joined.contains(&layout.channel_of_event(g)),
                        layout.receives(i, g)
                    );
                }
            }
        }
    }

    #[test]
    fn broadcast_reaches_everyone() {
        let layout = Layout {
            broadcast: true,
            to_users: false,
            ..layout(1, 1)
        };
        assert_eq!(layout.expected(5, 10, &[2]), 9);
    }
}
