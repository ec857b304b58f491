//! mmm monitor: MMM config, checks, the host state machine and role distribution (pure, in
//! [`core`]), the Monitor gRPC service and the `mmm_control` CLI.

pub mod checks;
pub mod core;

/// Default TCP port of the Monitor gRPC service (MMM's monitor port).
pub const DEFAULT_MONITOR_PORT: u16 = 9988;
