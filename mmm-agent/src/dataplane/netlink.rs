//! Links and addresses through rtnetlink: interface index and MAC, VIP `/32`s on `lo`.

use super::{DataPlaneError, Result};
use futures::TryStreamExt;
use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::LinkAttribute,
};
use std::net::{IpAddr, Ipv4Addr};

/// The interface VIP addresses are configured on.
pub const VIP_DEVICE: &str = "lo";

/// An interface: index and MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub mac: [u8; 6],
}

/// A netlink connection in the current network namespace.
#[derive(Clone)]
pub struct Netlink {
    handle: rtnetlink::Handle,
}

fn nl_code(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

impl Netlink {
    /// Opens a route netlink socket; must be called inside a tokio runtime.
    pub fn new() -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| DataPlaneError::Netlink(format!("opening a netlink socket: {e}")))?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Index and MAC of `name`.
    pub async fn link(&self, name: &str) -> Result<Link> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let msg = match s.try_next().await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(DataPlaneError::NoSuchInterface(name.into())),
            Err(e) if nl_code(&e) == Some(libc::ENODEV) => {
                return Err(DataPlaneError::NoSuchInterface(name.into()))
            }
            Err(e) => {
                return Err(DataPlaneError::Netlink(format!(
                    "reading link '{name}': {e}"
                )))
            }
        };
        let mut mac = [0u8; 6];
        for a in &msg.attributes {
            if let LinkAttribute::Address(bytes) = a {
                if bytes.len() == 6 {
                    mac.copy_from_slice(bytes);
                }
            }
        }
        Ok(Link {
            index: msg.header.index,
            mac,
        })
    }

    /// The resolved IPv4 neighbours of interface `ifindex` (reachable, stale, delayed,
    /// probed or permanent entries): address → MAC.
    pub async fn neighbours(&self, ifindex: u32) -> Result<Vec<(Ipv4Addr, [u8; 6])>> {
        use netlink_packet_route::neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourState,
        };
        let mut s = self
            .handle
            .neighbours()
            .get()
            .set_address_family(netlink_packet_route::AddressFamily::Inet)
            .execute();
        let mut out = Vec::new();
        loop {
            let m = match s.try_next().await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => return Err(DataPlaneError::Netlink(format!("reading neighbours: {e}"))),
            };
            let resolved = matches!(
                m.header.state,
                NeighbourState::Reachable
                    | NeighbourState::Stale
                    | NeighbourState::Delay
                    | NeighbourState::Probe
                    | NeighbourState::Permanent
            );
            if m.header.ifindex != ifindex || !resolved {
                continue;
            }
            let (mut ip, mut mac) = (None, None);
            for a in &m.attributes {
                match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => ip = Some(*v4),
                    NeighbourAttribute::LinkLayerAddress(b) if b.len() == 6 => {
                        let mut x = [0u8; 6];
                        x.copy_from_slice(b);
                        mac = Some(x);
                    }
                    _ => {}
                }
            }
            if let (Some(ip), Some(mac)) = (ip, mac) {
                out.push((ip, mac));
            }
        }
        Ok(out)
    }

    /// Adds `vip/32` to `lo`; `false` when it was already there.
    pub async fn add_vip_address(&self, vip: Ipv4Addr) -> Result<bool> {
        let lo = self.link(VIP_DEVICE).await?;
        match self
            .handle
            .address()
            .add(lo.index, IpAddr::V4(vip), 32)
            .execute()
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if nl_code(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(DataPlaneError::Netlink(format!(
                "adding {vip}/32 to {VIP_DEVICE}: {e}"
            ))),
        }
    }

    /// The address messages of `vip/32` on `lo` (zero or one).
    async fn vip_addresses(&self, vip: Ipv4Addr) -> Result<Vec<AddressMessage>> {
        let lo = self.link(VIP_DEVICE).await?;
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(lo.index)
            .execute();
        let mut found = Vec::new();
        while let Some(msg) = s.try_next().await.map_err(|e| {
            DataPlaneError::Netlink(format!("listing addresses of {VIP_DEVICE}: {e}"))
        })? {
            let is_vip = msg.header.prefix_len == 32
                && msg
                    .attributes
                    .iter()
                    .any(|a| matches!(a, AddressAttribute::Local(IpAddr::V4(ip)) if *ip == vip));
            if is_vip {
                found.push(msg);
            }
        }
        Ok(found)
    }

    /// Removes `vip/32` from `lo`; `false` when it was not there.
    pub async fn del_vip_address(&self, vip: Ipv4Addr) -> Result<bool> {
        let mut removed = false;
        for msg in self.vip_addresses(vip).await? {
            match self.handle.address().del(msg).execute().await {
                Ok(()) => removed = true,
                Err(e) if nl_code(&e) == Some(libc::EADDRNOTAVAIL) => {}
                Err(e) => {
                    return Err(DataPlaneError::Netlink(format!(
                        "removing {vip}/32 from {VIP_DEVICE}: {e}"
                    )))
                }
            }
        }
        Ok(removed)
    }

    /// Whether `vip/32` is configured on `lo`.
    pub async fn has_vip_address(&self, vip: Ipv4Addr) -> Result<bool> {
        Ok(!self.vip_addresses(vip).await?.is_empty())
    }
}
