//! Documents generated from the command grammar, for packagers and shells:
//! completion scripts (`keygen completions SHELL`) and the man page
//! (`keygen man`, hidden: `scripts/package-deb.sh` installs its output as
//! keygen(1)). Generating them from `args.rs` keeps them from drifting from
//! `--help`.

use clap::{Arg, Command, CommandFactory};
use clap_mangen::Man;
use roff::{bold, italic, roman, Inline, Roff};

use crate::args::Cli;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "keygen", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// keygen(1) in roff. clap_mangen renders the top of the page; its own
/// SUBCOMMANDS section only lists names and points to one page per
/// subcommand (`keygen-api:generate(1)`), which we do not ship, so every
/// command's usage and arguments are written here into one COMMANDS section,
/// as in git(1) or rg(1) a single page covers the whole tool.
pub fn man_page() -> String {
    let mut cli = Cli::command();
    cli.build();
    let man = Man::new(cli.clone()).manual("Heratio keys");
    let mut out = Vec::new();
    for render in [
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ] {
        render(&man, &mut out).expect("writing to a Vec cannot fail");
    }
    let mut page = String::from_utf8(out).expect("clap_mangen writes UTF-8");
    // Each render_* call starts with roff's preamble (the definition of the
    // apostrophe string); keep the first, drop the copies of ours.
    let preamble = Roff::new().render();
    let first = page.find(&preamble).map_or(0, |i| i + preamble.len());
    page = format!("{}{}", &page[..first], page[first..].replace(&preamble, ""));

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    let global: Vec<&str> = cli.get_arguments().map(|a| a.get_id().as_str()).collect();
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_entry(&mut roff, sub, &global);
    }
    if let Some(after) = cli.get_after_help() {
        roff.control("SH", ["DETAILS"]);
        preformatted(&mut roff, &after.to_string());
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "/usr/share/doc/heratio-keys/ (the project's documentation: cli.md, web.md, install.md); \
         keygen completions SHELL prints a completion script.",
    )]);
    page.push_str(roff.render().trim_start_matches(preamble.as_str()));
    page
}

/// One subcommand: its usage line, what it does, its arguments (minus the
/// global ones, described once under OPTIONS) and its example.
fn command_entry(roff: &mut Roff, sub: &Command, global: &[&str]) {
    roff.control("SS", [sub.get_name()]);
    let usage = sub.clone().render_usage().to_string();
    let usage = usage.trim_start_matches("Usage:").trim();
    // `keygen-api:generate` is how clap names a subcommand's binary.
    let usage = usage.replacen(
        &format!("keygen-{}", sub.get_name()),
        &format!("keygen {}", sub.get_name()),
        1,
    );
    roff.text([bold(usage)]);
    if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
        roff.control("PP", []);
        roff.text([roman(about.to_string())]);
    }
    for arg in sub
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !global.contains(&a.get_id().as_str()))
    {
        roff.control("TP", []);
        roff.text(arg_label(arg));
        if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
            roff.text([roman(help.to_string())]);
        }
    }
    if let Some(after) = sub.get_after_help() {
        roff.control("PP", []);
        preformatted(roff, &after.to_string());
    }
}

/// `--name <LABEL>`, `<CLIENT_ID>`, with the default value if there is one.
fn arg_label(arg: &Arg) -> Vec<Inline> {
    let names = arg
        .get_value_names()
        .map(|v| v.join(" "))
        .unwrap_or_else(|| arg.get_id().to_string());
    let mut label = Vec::new();
    match (arg.get_short(), arg.get_long()) {
        (_, Some(long)) => {
            label.push(bold(format!("--{long}")));
            if arg.get_num_args().is_some_and(|n| n.takes_values()) {
                label.push(roman(" "));
                label.push(italic(format!("<{names}>")));
            }
        }
        (Some(short), None) => label.push(bold(format!("-{short}"))),
        (None, None) => label.push(italic(format!("<{names}>"))),
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && !arg.is_hide_default_value_set() {
        label.push(roman(format!(" [default: {}]", defaults.join(","))));
    }
    label
}

/// Help text laid out in columns (exit codes, examples): kept line for line.
fn preformatted(roff: &mut Roff, text: &str) {
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_documents_every_visible_command_and_its_flags() {
        let page = man_page();
        assert!(
            page.starts_with(&Roff::new().render()),
            "roff preamble first"
        );
        assert_eq!(
            page.matches(".ie \\n(.g").count(),
            1,
            "the apostrophe preamble is defined once"
        );
        assert!(page.contains(".TH keygen 1"), "{}", &page[..200]);
        let cli = Cli::command();
        for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
            // Control lines are not escaped; text lines write `-` as `\-`.
            let heading = format!(".SS {}\n", sub.get_name());
            assert!(page.contains(&heading), "no section for {}", sub.get_name());
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    let flag = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(page.contains(&flag), "{}: no {flag}", sub.get_name());
                }
            }
        }
        assert!(
            !page.contains(".SS man\n"),
            "the hidden generator is not listed"
        );
        assert!(
            !page.contains("keygen\\-api:"),
            "subcommands are not separate pages"
        );
        assert!(
            page.contains(".SH DETAILS"),
            "exit codes and the walkthrough"
        );
    }

    #[test]
    fn completions_name_the_commands() {
        let bash = completions(clap_complete::Shell::Bash);
        assert!(
            bash.contains("api:generate") && bash.contains("complete -F"),
            "{bash}"
        );
        let fish = completions(clap_complete::Shell::Fish);
        assert!(fish.contains("complete -c keygen"), "{fish}");
    }
}
