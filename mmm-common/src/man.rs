//! Man pages and shell completions generated from clap definitions (feature `man`), for the
//! Debian packages (`cargo xtask deb`).

use std::path::Path;

/// Writes `cmd`'s man page (`NAME.SECTION`, roff) and its bash, zsh and fish completions into
/// `dir` (created when missing).
///
/// Errors: any I/O error writing them.
pub fn generate(cmd: clap::Command, name: &str, section: &str, dir: &Path) -> std::io::Result<()> {
    use clap_complete::Shell;
    std::fs::create_dir_all(dir)?;
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section(section)
        .render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.{section}")), page)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), name, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_and_three_completions() {
        let d = tempfile::tempdir().unwrap();
        let cmd = clap::Command::new("demo")
            .about("does things")
            .arg(clap::Arg::new("x").long("x"));
        generate(cmd, "demo", "8", d.path()).unwrap();
        let page = std::fs::read_to_string(d.path().join("demo.8")).unwrap();
        assert!(page.contains(".TH demo 8"), "{page}");
        for f in ["demo.bash", "_demo", "demo.fish"] {
            assert!(d.path().join(f).is_file(), "{f}");
        }
    }
}
