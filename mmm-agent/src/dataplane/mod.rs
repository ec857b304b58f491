//! The host-local data plane: the XDP program on the cluster interface and its maps.
//!
//! State lives in bpffs, not in the agent process: program, maps and the XDP link are pinned
//! under `<pin root>/<iface>/` (default `/sys/fs/bpf/mmm/<iface>/`). An agent that exits or
//! crashes leaves VIP traffic flowing; the next one re-opens the pins ([`DataPlane::attach`] is
//! idempotent). [`DataPlane::detach`] removes the link, the pins and the VIP addresses.
//!
//! Invariants kept here:
//! - a VIP's `/32` exists (on `lo`) only while its map entry is `LOCAL`: acquire adds the
//!   address before the map says `LOCAL`, release rewrites the map before removing the address;
//! - the kernel never answers ARP for a VIP (`arp_ignore=1`, `arp_announce=2` on the interface);
//! - a role switch is one map write per VIP.

mod bpffs;
pub mod garp;
mod netlink;
mod pins;
mod sysctl;
mod vip;

use aya::{
    maps::{Array, HashMap, Map, MapData, PerCpuArray, PerCpuValues},
    programs::{links::FdLink, links::PinnedLink, XdpMode},
    EbpfLoader,
};
use mmm_common::{
    key_vip, local_filter_bit, vip_key, Action, IfaceInfo, VipEntry, VipStats, IFACE_FLAG_LOG,
    MAP_IFACE, MAP_LOCALS, MAP_STATS, MAP_VIPS, MAX_VIPS, PROG_MAIN,
};
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

pub use netlink::{Link, Netlink};
pub use pins::{attach_pass, Pins};
use pins::{attach_program, iface_info};
pub use vip::{acquire, redirect, release, Release};

/// Default root of the pins: one directory per interface below it.
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/mmm";

/// Errors of the data plane. Each names the interface, path or VIP concerned.
#[derive(Debug, thiserror::Error)]
pub enum DataPlaneError {
    #[error("interface '{0}' does not exist in this network namespace")]
    NoSuchInterface(String),
    #[error("interface name '{0}' is not valid (1-15 characters, no '/' or whitespace)")]
    BadInterfaceName(String),
    #[error("the data plane is not attached to '{iface}' (no pins under {dir}); run `mmm-agent attach --iface {iface}`")]
    NotAttached { iface: String, dir: PathBuf },
    #[error("pins under {dir} are stale or broken ({reason}); run `mmm-agent detach --iface {iface}` and attach again")]
    StalePins {
        iface: String,
        dir: PathBuf,
        reason: String,
    },
    #[error("loading the XDP program failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("XDP program '{name}': {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("attaching XDP to '{iface}' failed in native and in SKB mode: {source}")]
    Attach {
        iface: String,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("pinning {path}: {source}")]
    Pin {
        path: PathBuf,
        #[source]
        source: aya::pin::PinError,
    },
    #[error("{what} ({path}): {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("VIP {0} is not in the table of this interface")]
    UnknownVip(Ipv4Addr),
    #[error("VIP table of '{iface}' is full ({max} entries)")]
    TableFull { iface: String, max: u32 },
    #[error("gratuitous ARP on '{iface}': {source}")]
    Garp {
        iface: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = DataPlaneError> = std::result::Result<T, E>;

/// How to attach the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to SKB (generic) mode with a log line.
    #[default]
    Auto,
    /// Native mode only.
    Native,
    /// SKB (generic) mode only.
    Skb,
}

/// What [`DataPlane::attach`] found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    /// Loaded and attached now, in this mode.
    Fresh(XdpMode),
    /// Already attached: the pins were re-opened, nothing was interrupted.
    Reopened,
}

/// An open handle on the data plane of one interface (through its pinned maps).
pub struct DataPlane {
    iface: String,
    pins: Pins,
    vips: HashMap<MapData, u32, VipEntry>,
    stats: PerCpuArray<MapData, VipStats>,
    info: Array<MapData, IfaceInfo>,
    locals: Array<MapData, u64>,
}

/// One row of [`DataPlane::list`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipRow {
    pub vip: Ipv4Addr,
    pub action: Option<Action>,
    pub owner_mac: [u8; 6],
    pub stats: VipStats,
}

fn map_err(name: &'static str) -> impl FnOnce(aya::maps::MapError) -> DataPlaneError {
    move |source| DataPlaneError::Map { name, source }
}

fn pinned_map(pins: &Pins, name: &'static str) -> Result<Map> {
    let path = pins.map(name);
    let data = MapData::from_pin(&path).map_err(map_err(name))?;
    Map::from_map_data(data).map_err(map_err(name))
}

impl DataPlane {
    /// Loads, attaches and pins the program on `iface`, or re-opens it when already pinned.
    /// Also mounts bpffs when needed and sets the interface's ARP sysctls.
    pub async fn attach(
        nl: &Netlink,
        pin_root: &Path,
        iface: &str,
        mode: AttachMode,
    ) -> Result<(DataPlane, Attached)> {
        let pins = Pins::new(pin_root, iface)?;
        let link = nl.link(iface).await?;
        sysctl::quiet_arp(iface)?;
        if pins.link().exists() {
            PinnedLink::from_pin(pins.link()).map_err(|e| DataPlaneError::StalePins {
                iface: iface.into(),
                dir: pins.dir().into(),
                reason: e.to_string(),
            })?;
            let mut dp = DataPlane::open(pin_root, iface)?;
            dp.write_iface(&link)?;
            return Ok((dp, Attached::Reopened));
        }
        if pins.exist() {
            return Err(DataPlaneError::StalePins {
                iface: iface.into(),
                dir: pins.dir().into(),
                reason: "directory exists without a link pin".into(),
            });
        }
        bpffs::ensure_dir(pins.dir())?;
        match Self::load_and_pin(&pins, iface, &link, mode) {
            Ok(m) => Ok((DataPlane::open(pin_root, iface)?, Attached::Fresh(m))),
            Err(e) => {
                // Never leave a half-made data plane behind.
                let _ = std::fs::remove_dir_all(pins.dir());
                Err(e)
            }
        }
    }

    fn load_and_pin(pins: &Pins, iface: &str, link: &Link, mode: AttachMode) -> Result<XdpMode> {
        let mut ebpf = EbpfLoader::new().load(crate::EBPF_OBJECT)?;
        for name in [MAP_VIPS, MAP_IFACE, MAP_STATS, MAP_LOCALS] {
            let path = pins.map(name);
            let map = ebpf.map(name).ok_or(DataPlaneError::Map {
                name: "object",
                source: aya::maps::MapError::InvalidName { name: name.into() },
            })?;
            map.pin(&path)
                .map_err(|source| DataPlaneError::Pin { path, source })?;
        }
        {
            let map = ebpf.map_mut(MAP_IFACE).ok_or(DataPlaneError::Map {
                name: MAP_IFACE,
                source: aya::maps::MapError::InvalidName {
                    name: MAP_IFACE.into(),
                },
            })?;
            let mut info: Array<&mut MapData, IfaceInfo> =
                Array::try_from(map).map_err(map_err(MAP_IFACE))?;
            info.set(0, iface_info(link, 0), 0)
                .map_err(map_err(MAP_IFACE))?;
        }
        let (prog, m) = attach_program(&mut ebpf, PROG_MAIN, iface, mode, &pins.link())?;
        let path = pins.prog();
        prog.pin(&path).map_err(|source| DataPlaneError::Pin {
            path: path.clone(),
            source,
        })?;
        Ok(m)
    }

    /// Opens the pinned maps of `iface` (the program must be attached).
    pub fn open(pin_root: &Path, iface: &str) -> Result<DataPlane> {
        let pins = Pins::new(pin_root, iface)?;
        if !pins.link().exists() {
            return Err(DataPlaneError::NotAttached {
                iface: iface.into(),
                dir: pins.dir().into(),
            });
        }
        let vips = HashMap::try_from(pinned_map(&pins, MAP_VIPS)?).map_err(map_err(MAP_VIPS))?;
        let stats =
            PerCpuArray::try_from(pinned_map(&pins, MAP_STATS)?).map_err(map_err(MAP_STATS))?;
        let info = Array::try_from(pinned_map(&pins, MAP_IFACE)?).map_err(map_err(MAP_IFACE))?;
        let locals =
            Array::try_from(pinned_map(&pins, MAP_LOCALS)?).map_err(map_err(MAP_LOCALS))?;
        Ok(DataPlane {
            iface: iface.into(),
            pins,
            vips,
            stats,
            info,
            locals,
        })
    }

    /// The interface this handle serves.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Where its pins are.
    pub fn pins(&self) -> &Pins {
        &self.pins
    }

    fn write_iface(&mut self, link: &Link) -> Result<()> {
        let flags = self.info.get(&0, 0).map(|i| i.flags).unwrap_or(0);
        self.info
            .set(0, iface_info(link, flags), 0)
            .map_err(map_err(MAP_IFACE))
    }

    /// The interface information the program sees.
    pub fn iface_info(&self) -> Result<IfaceInfo> {
        self.info.get(&0, 0).map_err(map_err(MAP_IFACE))
    }

    /// The kernel's id of the pinned XDP program (for aya-log's reader).
    pub fn program_id(&self) -> Result<u32> {
        aya::programs::ProgramInfo::from_pin(self.pins.prog())
            .map(|i| i.id())
            .map_err(|source| DataPlaneError::Program {
                name: PROG_MAIN,
                source,
            })
    }

    /// Turns per-decision logging of the program on or off.
    pub fn set_log(&mut self, on: bool) -> Result<()> {
        let mut i = self.iface_info()?;
        i.flags = if on {
            i.flags | IFACE_FLAG_LOG
        } else {
            i.flags & !IFACE_FLAG_LOG
        };
        self.info.set(0, i, 0).map_err(map_err(MAP_IFACE))
    }

    /// The one map write of a role switch: what the program does with `vip` from now on.
    /// A new VIP gets a free counter slot (zeroed). The `LOCALS` filter bit is set before an
    /// entry becomes `LOCAL` and cleared after one stops being, so the program never skips the
    /// conflict check of a `LOCAL` VIP.
    pub fn set(&mut self, vip: Ipv4Addr, action: Action, owner_mac: [u8; 6]) -> Result<()> {
        let key = vip_key(vip);
        let slot = match self.get(vip)? {
            Some(e) => e.slot,
            None => {
                let slot = self.free_slot()?;
                self.zero_stats(slot)?;
                slot
            }
        };
        if action == Action::Local {
            self.filter_update(key, true)?;
        }
        self.vips
            .insert(key, VipEntry::new(action, owner_mac, slot), 0)
            .map_err(|e| self.full_or(MAP_VIPS, e))?;
        if action != Action::Local {
            self.filter_refresh(key)?;
        }
        Ok(())
    }

    /// The lowest counter slot no entry uses.
    fn free_slot(&self) -> Result<u32> {
        let mut used = vec![false; MAX_VIPS as usize];
        for item in self.vips.iter() {
            let (_, e) = item.map_err(map_err(MAP_VIPS))?;
            if let Some(u) = used.get_mut(e.slot as usize) {
                *u = true;
            }
        }
        used.iter()
            .position(|u| !u)
            .map(|i| i as u32)
            .ok_or_else(|| DataPlaneError::TableFull {
                iface: self.iface.clone(),
                max: MAX_VIPS,
            })
    }

    fn zero_stats(&mut self, slot: u32) -> Result<()> {
        let cpus = aya::util::nr_cpus().map_err(|(path, source)| DataPlaneError::Io {
            what: "counting CPUs",
            path: path.into(),
            source,
        })?;
        let zero = PerCpuValues::try_from(vec![VipStats::default(); cpus]).map_err(|source| {
            DataPlaneError::Io {
                what: "per-CPU values",
                path: self.pins.dir().into(),
                source,
            }
        })?;
        self.stats.set(slot, zero, 0).map_err(map_err(MAP_STATS))
    }

    /// Sets or clears `key`'s bit in the `LOCALS` filter.
    fn filter_update(&mut self, key: u32, on: bool) -> Result<()> {
        let (word, mask) = local_filter_bit(key);
        let w = self.locals.get(&word, 0).map_err(map_err(MAP_LOCALS))?;
        let new = if on { w | mask } else { w & !mask };
        if new != w {
            self.locals.set(word, new, 0).map_err(map_err(MAP_LOCALS))?;
        }
        Ok(())
    }

    /// Whether the `LOCALS` filter lets `ip` through to the conflict check (true for every
    /// `LOCAL` VIP; possibly for others sharing a bit).
    pub fn may_be_local(&self, ip: Ipv4Addr) -> Result<bool> {
        let (word, mask) = local_filter_bit(vip_key(ip));
        Ok(self.locals.get(&word, 0).map_err(map_err(MAP_LOCALS))? & mask != 0)
    }

    /// Clears `key`'s filter bit unless a `LOCAL` VIP still needs it.
    fn filter_refresh(&mut self, key: u32) -> Result<()> {
        let (word, mask) = local_filter_bit(key);
        if self.locals.get(&word, 0).map_err(map_err(MAP_LOCALS))? & mask == 0 {
            return Ok(());
        }
        for item in self.vips.iter() {
            let (k, e) = item.map_err(map_err(MAP_VIPS))?;
            if e.action == Action::Local as u8 && local_filter_bit(k) == (word, mask) {
                return Ok(());
            }
        }
        self.filter_update(key, false)
    }

    fn full_or(&self, name: &'static str, e: aya::maps::MapError) -> DataPlaneError {
        if let aya::maps::MapError::SyscallError(s) = &e {
            if s.io_error.raw_os_error() == Some(libc::E2BIG) {
                return DataPlaneError::TableFull {
                    iface: self.iface.clone(),
                    max: mmm_common::MAX_VIPS,
                };
            }
        }
        DataPlaneError::Map { name, source: e }
    }

    /// Whether this host answers for `vip` (its entry is `LOCAL`); false when it cannot tell.
    pub fn is_local(&self, vip: Ipv4Addr) -> bool {
        self.get(vip).ok().flatten().map(|e| e.action) == Some(Action::Local as u8)
    }

    /// Every VIP whose entry is `LOCAL`, sorted (no counters read).
    pub fn locals(&self) -> Result<Vec<Ipv4Addr>> {
        let mut out = Vec::new();
        for item in self.vips.iter() {
            let (key, e) = item.map_err(map_err(MAP_VIPS))?;
            if e.action == Action::Local as u8 {
                out.push(key_vip(key));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The entry of `vip`, if any.
    pub fn get(&self, vip: Ipv4Addr) -> Result<Option<VipEntry>> {
        match self.vips.get(&vip_key(vip), 0) {
            Ok(e) => Ok(Some(e)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(DataPlaneError::Map {
                name: MAP_VIPS,
                source: e,
            }),
        }
    }

    /// Forgets `vip` entirely (its traffic passes untouched afterwards).
    pub fn remove(&mut self, vip: Ipv4Addr) -> Result<()> {
        let key = vip_key(vip);
        match self.vips.remove(&key) {
            Ok(()) => {}
            Err(aya::maps::MapError::KeyNotFound) => return Err(DataPlaneError::UnknownVip(vip)),
            Err(e) => {
                return Err(DataPlaneError::Map {
                    name: MAP_VIPS,
                    source: e,
                })
            }
        }
        self.filter_refresh(key)
    }

    /// Counters of one VIP, summed over CPUs (zero when it has none).
    pub fn stats(&self, vip: Ipv4Addr) -> Result<VipStats> {
        match self.get(vip)? {
            Some(e) => self.slot_stats(e.slot),
            None => Ok(VipStats::default()),
        }
    }

    fn slot_stats(&self, slot: u32) -> Result<VipStats> {
        let per_cpu = self.stats.get(&slot, 0).map_err(map_err(MAP_STATS))?;
        Ok(per_cpu.iter().fold(VipStats::default(), |a, s| a.add(*s)))
    }

    /// Every VIP in the table with its counters, sorted by address.
    pub fn list(&self) -> Result<Vec<VipRow>> {
        let mut rows = Vec::new();
        for item in self.vips.iter() {
            let (key, e) = item.map_err(map_err(MAP_VIPS))?;
            let vip = key_vip(key);
            rows.push(VipRow {
                vip,
                action: Action::from_u8(e.action),
                owner_mac: e.owner_mac,
                stats: self.slot_stats(e.slot)?,
            });
        }
        rows.sort_by_key(|r| r.vip);
        Ok(rows)
    }

    /// Removes everything the data plane made on `iface`: the VIP addresses it owns, the XDP
    /// link (detaching the program), the pinned program and maps and their directory.
    /// Safe to run when nothing is attached. Returns the VIP addresses removed.
    pub async fn detach(nl: &Netlink, pin_root: &Path, iface: &str) -> Result<Vec<Ipv4Addr>> {
        let pins = Pins::new(pin_root, iface)?;
        let mut removed = Vec::new();
        if let Ok(dp) = DataPlane::open(pin_root, iface) {
            for row in dp.list()? {
                if row.action == Some(Action::Local) && nl.del_vip_address(row.vip).await? {
                    removed.push(row.vip);
                }
            }
        }
        if pins.link().exists() {
            // Unpinning the last reference to the link detaches the program.
            if let Ok(link) = PinnedLink::from_pin(pins.link()) {
                let fd_link: FdLink = link.unpin().map_err(|source| DataPlaneError::Io {
                    what: "unpinning the XDP link",
                    path: pins.link(),
                    source,
                })?;
                drop(fd_link);
            }
        }
        if pins.exist() {
            std::fs::remove_dir_all(pins.dir()).map_err(|source| DataPlaneError::Io {
                what: "removing the pins",
                path: pins.dir().into(),
                source,
            })?;
        }
        // Remove the root too when this was the last interface (never anything else).
        let _ = std::fs::remove_dir(pin_root);
        Ok(removed)
    }
}
