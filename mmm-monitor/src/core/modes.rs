//! Monitor modes (`docs/mmm-2.2.1.md` §5): WAIT becoming ACTIVE, and mode changes with
//! MMM's log lines and a published event.

use super::Action;
use super::{Cluster, Event, Host, HostState, Log, Mode, Time};

impl Cluster {
    /// WAIT mode (`docs/mmm-2.2.1.md` §5): ACTIVE once both masters are ONLINE, or once one
    /// has been ONLINE for `wait_for_other_master` (0: wait for ever for the other).
    pub(super) fn update_wait_mode(&mut self, now: Time) {
        if self.mode != Mode::Wait {
            return;
        }
        let masters: Vec<&Host> = self
            .hosts
            .iter()
            .filter(|h| self.can_be_master(&h.name))
            .collect();
        let online: Vec<&&Host> = masters
            .iter()
            .filter(|h| h.state == HostState::Online)
            .collect();
        if !online.is_empty() && online.len() == masters.len() {
            let names: Vec<&str> = online.iter().map(|h| h.name.as_str()).collect();
            self.log(Log::info(format!(
                "Nodes {} are ONLINE, switching from mode 'WAIT' to 'ACTIVE'.",
                names.join(" and ")
            )));
            self.set_mode(Mode::Active);
            return;
        }
        let wait = self.wait_for_other_master;
        let living = online.iter().find(|h| {
            h.online_since
                .is_some_and(|t| now.saturating_sub(t) >= wait)
        });
        if let (false, Some(_)) = (wait.is_zero(), living) {
            let dead: Vec<String> = masters
                .iter()
                .filter(|h| h.state != HostState::Online)
                .map(|h| h.name.clone())
                .collect();
            self.set_mode(Mode::Active);
            self.log(Log::warn(format!(
                "Master {} did not come online for {}(wait_for_other_master) seconds. Switching from mode 'WAIT' to 'ACTIVE'",
                dead.join(", "),
                wait.as_secs()
            )));
        }
    }

    pub(super) fn set_mode(&mut self, to: Mode) {
        let from = self.mode;
        if from == to {
            return;
        }
        self.mode = to;
        if to != Mode::Passive {
            self.passive_cause = None;
        }
        self.log(Log::info(format!(
            "Switched into {} mode",
            to.name().to_lowercase()
        )));
        self.out
            .push(Action::Event(Event::ModeChanged { from, to }));
    }
}
