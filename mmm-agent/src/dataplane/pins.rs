//! Pins and attachment: where the program, maps and XDP link of one interface live in bpffs
//! (`<pin root>/<iface>/{link,prog,VIPS,IFACE,STATS,LOCALS}`), and attaching a program with a
//! pinned `bpf_link` (native mode, falling back to SKB mode in [`AttachMode::Auto`]).

use super::{bpffs, AttachMode, DataPlaneError, Link, Result};
use aya::{
    programs::{links::FdLink, Xdp, XdpMode},
    EbpfLoader,
};
use mmm_common::{IfaceInfo, PROG_PASS};
use std::path::{Path, PathBuf};

/// Paths of the pins of one interface.
#[derive(Clone, Debug)]
pub struct Pins {
    dir: PathBuf,
}

impl Pins {
    /// The pins of `iface` below `root`.
    pub fn new(root: &Path, iface: &str) -> Result<Self> {
        validate_iface_name(iface)?;
        Ok(Pins {
            dir: root.join(iface),
        })
    }
    /// The directory holding them.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub(super) fn link(&self) -> PathBuf {
        self.dir.join("link")
    }
    pub(super) fn prog(&self) -> PathBuf {
        self.dir.join("prog")
    }
    pub(super) fn map(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// Whether anything is pinned for this interface.
    pub fn exist(&self) -> bool {
        self.dir.exists()
    }
}

fn validate_iface_name(iface: &str) -> Result<()> {
    let ok = !iface.is_empty()
        && iface.len() < libc::IFNAMSIZ
        && iface != "."
        && iface != ".."
        && !iface.contains(|c: char| c == '/' || c.is_whitespace() || c == '\0');
    if ok {
        Ok(())
    } else {
        Err(DataPlaneError::BadInterfaceName(iface.to_string()))
    }
}

pub(super) fn iface_info(link: &Link, flags: u32) -> IfaceInfo {
    IfaceInfo {
        mac: link.mac,
        _pad: [0; 2],
        flags,
        ipv4: 0,
    }
}

/// Loads and attaches program `name` of `ebpf` to `iface`, pins its link at `link_pin`.
/// Returns the program (for the caller to pin) and the mode it got.
pub(super) fn attach_program<'a>(
    ebpf: &'a mut aya::Ebpf,
    name: &'static str,
    iface: &str,
    mode: AttachMode,
    link_pin: &Path,
) -> Result<(&'a mut Xdp, XdpMode)> {
    let prog_err = |source| DataPlaneError::Program { name, source };
    let prog: &mut Xdp = ebpf
        .program_mut(name)
        .ok_or(DataPlaneError::Program {
            name,
            source: aya::programs::ProgramError::NotLoaded,
        })?
        .try_into()
        .map_err(prog_err)?;
    prog.load().map_err(prog_err)?;
    let modes: &[XdpMode] = match mode {
        AttachMode::Auto => &[XdpMode::Driver, XdpMode::Skb],
        AttachMode::Native => &[XdpMode::Driver],
        AttachMode::Skb => &[XdpMode::Skb],
    };
    let mut last = None;
    for &m in modes {
        match prog.attach(iface, m) {
            Ok(id) => {
                if let Some(e) = &last {
                    tracing::warn!(iface, error = %e, "native XDP unavailable, attached in SKB (generic) mode");
                }
                let link = prog.take_link(id).map_err(prog_err)?;
                let fd_link = FdLink::try_from(link).map_err(|e| {
                    DataPlaneError::Netlink(format!(
                        "the kernel attached XDP on '{iface}' without a bpf_link ({e}); pinning needs Linux >= 5.9"
                    ))
                })?;
                fd_link
                    .pin(link_pin)
                    .map_err(|source| DataPlaneError::Pin {
                        path: link_pin.into(),
                        source,
                    })?;
                return Ok((prog, m));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(aya::programs::ProgramError::UnknownInterface { name }) => {
            DataPlaneError::NoSuchInterface(name)
        }
        Some(source) => DataPlaneError::Attach {
            iface: iface.into(),
            source,
        },
        None => DataPlaneError::NoSuchInterface(iface.into()),
    })
}

/// Attaches the trivial pass program to `iface` (the bridge side of a veth whose other end
/// runs the data plane: native-mode `XDP_TX` on veth needs an XDP program on the peer).
/// Pinned like the data plane, so [`DataPlane::detach`] removes it. Idempotent.
pub fn attach_pass(pin_root: &Path, iface: &str) -> Result<XdpMode> {
    let pins = Pins::new(pin_root, iface)?;
    if pins.link().exists() {
        return Ok(XdpMode::Driver);
    }
    bpffs::ensure_dir(pins.dir())?;
    let r = (|| {
        let mut ebpf = EbpfLoader::new().load(crate::EBPF_OBJECT)?;
        let (prog, m) = attach_program(
            &mut ebpf,
            PROG_PASS,
            iface,
            AttachMode::Native,
            &pins.link(),
        )?;
        let path = pins.prog();
        prog.pin(&path)
            .map_err(|source| DataPlaneError::Pin { path, source })?;
        Ok(m)
    })();
    if r.is_err() {
        let _ = std::fs::remove_dir_all(pins.dir());
    }
    r
}
