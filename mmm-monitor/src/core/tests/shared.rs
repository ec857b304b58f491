//! The shared state of monitor high availability (`shared.rs`): adopted by followers, taken
//! over by a new leader above the stored epoch, the fence wait carried across.

use super::*;
use crate::core::shared::{Shared, SharedError};

#[test]
fn a_follower_adopts_the_leaders_state_and_a_new_leader_publishes_above_its_epoch() {
    let c = config("");
    let mut leader = Cluster::new(&c, 0);
    leader.restore(&status_file::parse(
        "#epoch 41\ndb1|ONLINE|writer(192.168.8.30)\ndb2|ONLINE|reader(192.168.8.36)\ndb3|HARD_OFFLINE|\n",
    ).unwrap());
    leader.mode = Mode::Manual;
    let s = leader.shared(1_000);
    let back = Shared::decode(s.encode().as_bytes()).unwrap();
    assert_eq!(back, s);

    let mut f = Cluster::new(&c, 0);
    f.stand_by();
    let now = Duration::from_secs(5);
    f.step(Input::Network { up: true }, now);
    f.adopt(&back, now, 1_000).unwrap();
    assert_eq!(f.epoch, 41);
    assert_eq!(f.mode, Mode::Manual);
    assert_eq!(f.active_master(), Some("db1"));
    assert_eq!(f.host("db3").unwrap().state, HostState::HardOffline);
    // A follower publishes nothing, whatever arrives.
    let out = f.step(crate::core::Input::Tick, now);
    assert!(
        !out.iter()
            .any(|a| matches!(a, crate::core::Action::Push(_))),
        "{out:?}"
    );

    f.take_office(now, true);
    let out = f.step(crate::core::Input::Tick, now + Duration::from_millis(100));
    let pushed: Vec<u64> = out
        .iter()
        .filter_map(|a| match a {
            crate::core::Action::Push(t) => Some(t.epoch),
            _ => None,
        })
        .collect();
    assert_eq!(pushed, [42]);
}

#[test]
fn a_pending_fence_survives_a_change_of_leader_and_counts_from_taking_office() {
    let c = config("");
    let mut leader = Cluster::new(&c, 0);
    leader.fence = Some(FenceWait {
        host: "db1".into(),
        epoch: Some(7),
        renewable_at: Duration::from_secs(1),
        target: None,
        final_gtid: None,
        fencing: Some(3),
        fenced: false,
    });
    let mut f = Cluster::new(&c, 0);
    f.stand_by();
    f.adopt(&leader.shared(0), Duration::from_secs(2), 0)
        .unwrap();
    f.take_office(Duration::from_secs(9), true);
    let w = f.fence.clone().unwrap();
    assert_eq!(
        (w.host.as_str(), w.epoch, w.renewable_at),
        ("db1", None, Duration::from_secs(9))
    );
}

#[test]
fn a_bad_state_is_refused_and_changes_nothing() {
    let c = config("");
    let mut f = Cluster::new(&c, 3);
    let bad = Shared {
        mode: "SLEEPY".into(),
        ..Shared::default()
    };
    assert_eq!(
        f.adopt(&bad, Time::ZERO, 0),
        Err(SharedError::Mode("SLEEPY".into()))
    );
    assert!(matches!(Shared::decode(b"{"), Err(SharedError::Json(_))));
    assert_eq!(f.epoch, 3);
}
