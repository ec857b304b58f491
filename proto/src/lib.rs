//! The `mmm.v1` gRPC protocol shared by the monitor and the agents (generated code lands here
//! with the monitor and agent issues; only this crate and the gRPC adapters see prost types).
