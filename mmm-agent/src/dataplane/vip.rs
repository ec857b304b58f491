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
/// gratuitous ARP `garp_interval` apart (the first at once).
pub async fn acquire(
    dp: &mut DataPlane,
    nl: &Netlink,
    vip: Ipv4Addr,
    garp_rounds: u32,
    garp_interval: Duration,
) -> Result<()> {
    let link = nl.link(dp.iface()).await?;
    nl.add_vip_address(vip).await?;
    dp.set(vip, Action::Local, link.mac)?;
    let iface = dp.iface().to_string();
    tokio::task::spawn_blocking(move || {
        garp::announce(link.index, link.mac, vip, garp_rounds, garp_interval)
    })
    .await
    .map_err(|e| DataPlaneError::Garp {
        iface: iface.clone(),
        source: std::io::Error::other(e.to_string()),
    })?
    .map_err(|source| DataPlaneError::Garp { iface, source })
}

/// Gives `vip` up: the map first (steer or fence: from this instant the host no longer answers
/// for the VIP), then the `/32`.
pub async fn release(dp: &mut DataPlane, nl: &Netlink, vip: Ipv4Addr, how: Release) -> Result<()> {
    match how {
        Release::Steer(mac) => dp.set(vip, Action::Steer, mac)?,
        Release::Fence => dp.set(vip, Action::Fence, [0; 6])?,
    }
    nl.del_vip_address(vip).await?;
    Ok(())
}
