//! The agent's control side: the `Agent` gRPC service that applies epoch-fenced role tables,
//! switches MySQL between writable and read-only, repoints replication and streams local health.
//!
//! Not built yet: this is the skeleton the agent issue fills in on top of [`crate::dataplane`].

/// Default TCP port of the Agent gRPC service (MMM's agent port).
pub const DEFAULT_AGENT_PORT: u16 = 9989;
