//! Man pages and shell completions generated from clap definitions (feature `man`), for the
//! Debian packages (`cargo xtask deb`).

use std::path::Path;

/// Writes `cmd`'s man page (`NAME.SECTION`, roff), one page per subcommand at any depth
/// (`NAME-SUB.SECTION`, the pages the parent's SUBCOMMANDS section refers to), and its bash,
/// zsh and fish completions into `dir` (created when missing).
///
/// Errors: any I/O error writing them.
pub fn generate(cmd: clap::Command, name: &str, section: &str, dir: &Path) -> std::io::Result<()> {
    use clap_complete::Shell;
    std::fs::create_dir_all(dir)?;
    // Built once: global options reach the subcommands' pages; no `help` subcommand (no page
    // would answer the reference).
    let mut built = cmd.clone().disable_help_subcommand(true);
    built.build();
    pages(&built, name, section, dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), name, dir)?;
    }
    Ok(())
}

/// `cmd`'s page as `name`, then its visible subcommands' as `name-sub`.
fn pages(cmd: &clap::Command, name: &str, section: &str, dir: &Path) -> std::io::Result<()> {
    // clap names are `&'static str` (no `string` feature); `generate` runs once per process.
    let static_name: &'static str = Box::leak(name.to_string().into_boxed_str());
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(static_name))
        .section(section)
        .render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.{section}")), page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub_name = format!("{name}-{}", sub.get_name());
        pages(sub, &sub_name, section, dir)?;
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
            .arg(clap::Arg::new("x").long("x"))
            .arg(clap::Arg::new("everywhere").long("everywhere").global(true))
            .subcommand(
                clap::Command::new("serve")
                    .about("serves")
                    .subcommand(clap::Command::new("now")),
            )
            .subcommand(clap::Command::new("secret").hide(true));
        generate(cmd, "demo", "8", d.path()).unwrap();
        let page = std::fs::read_to_string(d.path().join("demo.8")).unwrap();
        assert!(page.contains(".TH demo 8"), "{page}");
        assert!(
            page.contains("demo\\-serve(8)"),
            "the page names its subcommands' pages: {page}"
        );
        // Every page the parent refers to exists, at any depth; hidden commands get none.
        let serve = std::fs::read_to_string(d.path().join("demo-serve.8")).unwrap();
        assert!(
            serve.contains(".TH demo-serve 8") && serve.contains("serves"),
            "{serve}"
        );
        assert!(
            serve.contains("everywhere"),
            "global options are on every page: {serve}"
        );
        assert!(
            !page.contains("help(8)"),
            "no page for clap's help subcommand: {page}"
        );
        assert!(d.path().join("demo-serve-now.8").is_file());
        assert!(!d.path().join("demo-secret.8").exists());
        for f in ["demo.bash", "_demo", "demo.fish"] {
            assert!(d.path().join(f).is_file(), "{f}");
        }
    }
}
