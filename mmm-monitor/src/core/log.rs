//! The core's log lines: a severity with MMM's names and the message, as the driver writes
//! them (`docs/mmm-2.2.1.md` quotes MMM's texts).

/// Log severity, MMM's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Fatal,
    Error,
    Warn,
    Info,
}

/// A log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    pub level: Level,
    pub message: String,
}

impl Log {
    pub fn fatal(m: String) -> Log {
        Log {
            level: Level::Fatal,
            message: m,
        }
    }
    pub fn error(m: String) -> Log {
        Log {
            level: Level::Error,
            message: m,
        }
    }
    pub fn warn(m: String) -> Log {
        Log {
            level: Level::Warn,
            message: m,
        }
    }
    pub fn info(m: String) -> Log {
        Log {
            level: Level::Info,
            message: m,
        }
    }
}
