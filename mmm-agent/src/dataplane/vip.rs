//! Acquire and release a VIP on this host: the address, the map entry and the announcement,
//! in the order that never leaves a moment with the VIP answered by nobody on purpose or by
//! two hosts.

use super::{garp, DataPlane, DataPlaneError, Netlink, Result};
use mmm_common::Action;
use std::{net::Ipv4Addr, time::Duration};

/// What a host that gives a VIP up does with traffic that still reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Forward it to the new owner's MAC (stale ARP caches keep working).
    Steer([u8; 6]),
    /// Drop it (nobody may receive the VIP, e.g. the writer during a fenced failover).
    Fence,
}

/// Makes this host the owner of `vip`: `/32` on `lo`, map `LOCAL`, then `garp_rounds` rounds of
/// gratuitous ARP `garp_interval` apart. The first round leaves before this returns; with
/// `wait_all` false the later rounds are sent in the background, off the failover's critical
/// path.
pub async fn acquire(
    dp: &mut DataPlane,
    nl: &Netlink,
    vip: Ipv4Addr,
    garp_rounds: u32,
    garp_interval: Duration,
    wait_all: bool,
) -> Result<()> {
    let link = nl.link(dp.iface()).await?;
    nl.add_vip_address(vip).await?;
    dp.set(vip, Action::Local, link.mac)?;
    if garp_rounds == 0 {
        return Ok(());
    }
    let iface = dp.iface().to_string();
    let garp_err = |source| DataPlaneError::Garp {
        iface: iface.clone(),
        source,
    };
    if wait_all {
        let r = tokio::task::spawn_blocking(move || {
            garp::announce(link.index, link.mac, vip, garp_rounds, garp_interval)
        })
        .await;
        return r
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(garp_err);
    }
    // First round now; the later rounds and the socket's (slow) close in the background. The
    // VIP is ours already (address and map): a failed announcement is a warning, never a
    // failed acquisition — XDP answers the neighbours' ARP requests either way — and a first
    // round that failed (say ENOBUFS on a congested queue) is sent again 1 ms later.
    let a = match garp::Announcer::open(link.index, link.mac, vip) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(%vip, %iface, "gratuitous ARP not sent: {}", garp_err(e));
            return Ok(());
        }
    };
    let (first_delay, rounds) = match a.round() {
        Ok(()) => (garp_interval, garp_rounds - 1),
        Err(e) => {
            tracing::warn!(%vip, "{} (sending again in 1 ms)", garp_err(e));
            (Duration::from_millis(1), garp_rounds)
        }
    };
    tokio::task::spawn_blocking(move || {
        if let Err(e) = a.rest(first_delay, rounds, garp_interval) {
            tracing::warn!(%vip, "gratuitous ARP: {e}");
        }
    });
    Ok(())
}

/// Gives `vip` up: the map first (steer or fence: from this instant the host no longer answers
/// for the VIP), then the `/32`.
pub async fn release(dp: &mut DataPlane, nl: &Netlink, vip: Ipv4Addr, how: Release) -> Result<()> {
    redirect(dp, vip, how)?;
    nl.del_vip_address(vip).await?;
    Ok(())
}

/// The map half of a release (one map write): from this instant the host no longer answers
/// for `vip`. The caller removes the `/32` afterwards (the agent first closes the demoted
/// writer's client connections, whose FIN/RST must still leave from the VIP).
pub fn redirect(dp: &mut DataPlane, vip: Ipv4Addr, how: Release) -> Result<()> {
    match how {
        Release::Steer(mac) => dp.set(vip, Action::Steer, mac),
        Release::Fence => dp.set(vip, Action::Fence, [0; 6]),
    }
}
