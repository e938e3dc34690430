//! Defaults shared by the binary's options and the libraries' own `Default` configurations,
//! so each is written once.

/// Largest event payload and client frame, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 65_536;

/// Server ping interval, in milliseconds.
pub const HEARTBEAT_MS: u64 = 25_000;

/// Frames queued per connection before it is closed as a slow consumer.
pub const OUTBOX_FRAMES: usize = 1024;

/// Bytes queued per connection before it is closed as a slow consumer.
pub const OUTBOX_BYTES: usize = 1024 * 1024;

/// Channels one connection may have joined at once.
pub const CHANNELS_PER_CONNECTION: usize = 100;

/// How often a gateway tells the dispatchers it is alive, in milliseconds.
pub const LIVENESS_INTERVAL_MS: u64 = 1_000;

/// Connections one client address may hold on a gateway.
pub const CONNECTIONS_PER_ADDRESS: usize = 256;

/// Time a connection has to identify, in milliseconds.
pub const IDENT_TIMEOUT_MS: u64 = 10_000;

/// Publishes per second one connection may make (client publish).
pub const CLIENT_PUBLISH_RATE: u32 = 20;

/// Time an RPC (or the publish hook) may take, in milliseconds.
pub const RPC_TIMEOUT_MS: u64 = 5_000;
