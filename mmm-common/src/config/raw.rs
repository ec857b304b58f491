//! First stage of reading MMM configuration: lines → directives grouped by section, with
//! `include` followed and every item remembering its `file:line`. No meaning is given to keys.

use super::ConfigError;
use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

/// Where something was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// `key value` with its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub key: String,
    pub value: String,
    pub at: Origin,
}

/// Section identity: `<kind name>` (`name` empty for unnamed sections such as `<monitor>`).
pub type SectionId = (String, String);

/// Every directive, by section (the global scope is `("", "")`). A section written several
/// times (e.g. `<host default>` in two files) collects all its directives, later ones last.
#[derive(Debug, Default)]
pub struct Raw {
    pub sections: BTreeMap<SectionId, Vec<Directive>>,
    /// Where each section was first opened.
    pub opened: BTreeMap<SectionId, Origin>,
    /// Order in which named sections were first opened (host order matters for role ties).
    pub order: Vec<SectionId>,
}

const MAX_INCLUDE_DEPTH: usize = 16;

/// Where MMM looks for an included file by a relative name (after the including file's own
/// directory, our addition).
pub const INCLUDE_DIRS: [&str; 3] = ["/etc", "/etc/mmm", "/etc/mysql-mmm"];

/// The file `include NAME` in `file` reads, as MMM resolves it: `.conf` appended when
/// missing; an absolute name as is; a relative one next to `file`, else in
/// [`INCLUDE_DIRS`] (the first that exists; the one next to `file` when none does, so the
/// error names it).
fn include_target(file: &Path, name: &str) -> PathBuf {
    include_target_in(file, name, &INCLUDE_DIRS.map(Path::new))
}

/// [`include_target`] with the directories searched after the including file's own.
fn include_target_in(file: &Path, name: &str, dirs: &[&Path]) -> PathBuf {
    let name = if name.ends_with(".conf") {
        name.to_string()
    } else {
        format!("{name}.conf")
    };
    let here = file.parent().unwrap_or(Path::new(".")).join(&name);
    if Path::new(&name).is_absolute() || here.exists() {
        return here;
    }
    dirs.iter()
        .map(|d| d.join(&name))
        .find(|p| p.exists())
        .unwrap_or(here)
}

impl Raw {
    /// Reads `path` and everything it includes.
    pub fn read(path: &Path) -> Result<Raw, ConfigError> {
        let mut raw = Raw::default();
        raw.read_file(path, 0, &mut None)?;
        Ok(raw)
    }

    /// Parses `text` as if read from `name` (includes are resolved relative to `name`'s directory).
    pub fn parse_str(name: &Path, text: &str) -> Result<Raw, ConfigError> {
        let mut raw = Raw::default();
        raw.parse(name, text, 0, &mut None)?;
        Ok(raw)
    }

    fn read_file(
        &mut self,
        path: &Path,
        depth: usize,
        open: &mut Option<(SectionId, Origin)>,
    ) -> Result<(), ConfigError> {
        let meta = std::fs::metadata(path).map_err(|e| ConfigError::Io {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.into(),
            reason: e.to_string(),
        })?;
        // MMM refuses a config file that others may read or write: it may hold passwords,
        // and it names programs run as root (kill_host_bin). Included files likewise.
        if crate::fsutil::open_to_others(&meta) {
            return Err(ConfigError::Permissions {
                path: path.into(),
                mode: meta.permissions().mode() & 0o777,
            });
        }
        self.parse(path, &text, depth, open)
    }

    fn parse(
        &mut self,
        file: &Path,
        text: &str,
        depth: usize,
        open: &mut Option<(SectionId, Origin)>,
    ) -> Result<(), ConfigError> {
        for (i, line) in text.lines().enumerate() {
            let at = Origin {
                file: file.into(),
                line: i + 1,
            };
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if let Some(rest) = t.strip_prefix("</") {
                let kind = rest.strip_suffix('>').map(str::trim).ok_or_else(|| {
                    ConfigError::syntax(&at, format!("malformed section end '{t}'"))
                })?;
                match open.take() {
                    Some(((k, _), _)) if k == kind => {}
                    Some(((k, n), o)) => {
                        return Err(ConfigError::syntax(
                            &at,
                            format!(
                            "'{t}' closes nothing: section <{k} {n}> opened at {o} is still open"
                        ),
                        ))
                    }
                    None => {
                        return Err(ConfigError::syntax(
                            &at,
                            format!("'{t}' closes a section that was never opened"),
                        ))
                    }
                }
                continue;
            }
            if let Some(rest) = t.strip_prefix('<') {
                let inner = rest.strip_suffix('>').ok_or_else(|| {
                    ConfigError::syntax(&at, format!("malformed section start '{t}'"))
                })?;
                // `<kind name/>`: an empty section (MMM accepts it), opened and closed at once.
                let (inner, empty) = match inner.strip_suffix('/') {
                    Some(i) => (i, true),
                    None => (inner, false),
                };
                let mut words = inner.split_whitespace();
                let kind = words.next().unwrap_or("").to_string();
                let name = words.next().unwrap_or("").to_string();
                if kind.is_empty() || words.next().is_some() {
                    return Err(ConfigError::syntax(
                        &at,
                        format!("malformed section start '{t}' (want <kind> or <kind name>)"),
                    ));
                }
                if let Some(((k, n), o)) = open {
                    return Err(ConfigError::syntax(
                        &at,
                        format!("section <{kind}> opened inside <{k} {n}> (opened at {o}); sections do not nest"),
                    ));
                }
                let id = (kind, name);
                self.sections.entry(id.clone()).or_default();
                if !self.opened.contains_key(&id) {
                    self.opened.insert(id.clone(), at.clone());
                    self.order.push(id.clone());
                }
                if !empty {
                    *open = Some((id, at));
                }
                continue;
            }
            let (key, value) = match t.find(char::is_whitespace) {
                Some(p) => (&t[..p], t[p..].trim()),
                None => (t, ""),
            };
            if key == "include" {
                if open.is_some() {
                    return Err(ConfigError::syntax(
                        &at,
                        "'include' inside a section".into(),
                    ));
                }
                if value.is_empty() {
                    return Err(ConfigError::syntax(
                        &at,
                        "'include' needs a file name".into(),
                    ));
                }
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(ConfigError::syntax(
                        &at,
                        format!(
                            "includes nested deeper than {MAX_INCLUDE_DEPTH} (an include loop?)"
                        ),
                    ));
                }
                let target = include_target(file, value);
                let mut inner_open = None;
                self.read_file(&target, depth + 1, &mut inner_open)
                    .map_err(|e| e.included_from(&at))?;
                if let Some(((k, n), o)) = inner_open {
                    return Err(ConfigError::syntax(
                        &o,
                        format!("section <{k} {n}> is never closed"),
                    ));
                }
                continue;
            }
            let id = open.as_ref().map(|(id, _)| id.clone()).unwrap_or_default();
            self.sections.entry(id).or_default().push(Directive {
                key: key.to_string(),
                value: value.to_string(),
                at,
            });
        }
        if depth == 0 {
            if let Some(((k, n), o)) = open.take() {
                return Err(ConfigError::syntax(
                    &o,
                    format!("section <{k} {n}> is never closed"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_are_found_next_to_the_file_then_in_the_search_directories() {
        let (here, etc, mmm) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let file = here.path().join("mmm_mon.conf");
        let dirs = [etc.path(), mmm.path()];
        // Found nowhere: the name next to the file, so that the error names it.
        let next = here.path().join("mmm_common.conf");
        assert_eq!(include_target_in(&file, "mmm_common", &dirs), next);
        // In a search directory (the first that has it), `.conf` added once.
        std::fs::write(mmm.path().join("mmm_common.conf"), "").unwrap();
        let in_mmm = mmm.path().join("mmm_common.conf");
        assert_eq!(include_target_in(&file, "mmm_common", &dirs), in_mmm);
        assert_eq!(include_target_in(&file, "mmm_common.conf", &dirs), in_mmm);
        std::fs::write(etc.path().join("mmm_common.conf"), "").unwrap();
        let in_etc = etc.path().join("mmm_common.conf");
        assert_eq!(include_target_in(&file, "mmm_common", &dirs), in_etc);
        // Next to the including file wins; an absolute name is taken as is.
        std::fs::write(&next, "").unwrap();
        assert_eq!(include_target_in(&file, "mmm_common", &dirs), next);
        assert_eq!(
            include_target_in(&file, "/nowhere/x", &dirs),
            PathBuf::from("/nowhere/x.conf")
        );
        assert_eq!(INCLUDE_DIRS, ["/etc", "/etc/mmm", "/etc/mysql-mmm"]);
    }
}
