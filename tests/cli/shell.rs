//! procnet in the shell: the completion script of `procnet completions bash`, loaded into a
//! real bash and asked what it completes, and the manual pages of `procnet man`.

use std::path::Path;

use crate::util::{procnet, program, Scratch};

/// Loads the completion script `$1`, then completes the command line `$2` (the cursor at its
/// end) as bash does on Tab: `COMP_WORDS`, `COMP_CWORD`, `COMP_LINE` and `COMP_POINT` set, the
/// function registered for `procnet` called with the command, the word and the one before.
const COMPLETE: &str = r#"
source "$1"
COMP_LINE="$2"
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
prev=""
(( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD - 1]}
function=$(complete -p procnet | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
[[ "$function" == _procnet ]] || { echo "procnet completes with \`$function\`"; exit 1; }
"$function" procnet "${COMP_WORDS[COMP_CWORD]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"#;

/// What bash offers for `line` with the completion script `script`.
fn complete(script: &Path, line: &str) -> Vec<String> {
    let run =
        program("bash", ["-c".as_ref(), COMPLETE.as_ref(), "bash".as_ref(), script.as_os_str(), line.as_ref()]).run();
    assert_eq!(run.code(), 0, "completing `{line}`:\n{}{}", run.stdout, run.stderr);
    run.stdout.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn bash_completes_commands_and_flags() {
    let run = procnet(["completions", "bash"]).run();
    run.expect_code(0);
    let s = Scratch::new();
    let script = s.write("procnet.bash", &run.stdout);
    assert_eq!(complete(&script, "procnet ru"), ["run"]);
    assert_eq!(complete(&script, "procnet run --re"), ["--report", "--repeat"]);
    assert_eq!(complete(&script, "procnet check --s"), ["--set"]);
    let commands = complete(&script, "procnet ");
    for c in ["run", "check", "graph", "plot", "export", "schema", "completions", "man"] {
        assert!(commands.contains(&c.to_string()), "`procnet ` offers `{c}`: {commands:?}");
    }
    // The commands procnet runs itself are hidden from `--help`, and from completion.
    for hidden in ["node", "forkserver"] {
        assert!(!commands.contains(&hidden.to_string()), "`procnet ` offers `{hidden}`: {commands:?}");
    }
    assert!(complete(&script, "procnet completions ").contains(&"zsh".to_string()));
}

#[test]
fn every_shell_gets_a_script() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = procnet(["completions", shell]).run();
        run.expect_code(0);
        let knows = |word: &str| run.stdout.contains(word);
        assert!(
            knows("procnet") && knows("report") && knows("repeat") && !knows("forkserver"),
            "{shell}:\n{}",
            run.stdout
        );
    }
    let run = procnet(["completions", "tcsh"]).run();
    assert_eq!(run.code(), 2, "an unknown shell is a usage error");
}

#[test]
fn the_manual_page_has_its_sections_and_commands() {
    let run = procnet(["man"]).run();
    run.expect_code(0);
    let page = &run.stdout;
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "roff:\n{page}");
    for section in [".TH procnet 1", ".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH SUBCOMMANDS", "EXIT STATUS"] {
        assert!(page.contains(section), "`{section}` in:\n{page}");
    }
    for command in ["run", "check", "graph", "plot", "export", "schema", "completions", "man"] {
        assert!(page.contains(&format!("procnet\\-{command}(1)")), "procnet-{command}(1) in:\n{page}");
    }
    assert!(!page.contains("forkserver") && !page.contains("procnet\\-node"), "no hidden command in:\n{page}");
}

#[test]
fn man_dir_writes_a_page_per_command_and_they_render() {
    let s = Scratch::new();
    let dir = s.path("man/man1");
    procnet(["man".as_ref(), "--dir".as_ref(), dir.as_os_str()]).run().expect_code(0);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .expect("the pages")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "procnet-check.1",
            "procnet-completions.1",
            "procnet-export-k8s.1",
            "procnet-export.1",
            "procnet-graph.1",
            "procnet-man.1",
            "procnet-plot.1",
            "procnet-run.1",
            "procnet-schema.1",
            "procnet.1"
        ]
    );
    let stdout = procnet(["man"]).run().stdout;
    assert_eq!(std::fs::read_to_string(dir.join("procnet.1")).expect("procnet.1"), stdout, "the same procnet(1)");
    // Rendered as `man` shows it, where man(1) is installed.
    if program("sh", ["-c", "command -v man"]).run().code() != 0 {
        eprintln!("man is not installed: the pages are not rendered");
        return;
    }
    for (page, expected) in [("procnet.1", "procnet-run(1)"), ("procnet-run.1", "--report <FILE>")] {
        let run = program("man", ["-l".as_ref(), dir.join(page).as_os_str()])
            .env("LC_ALL", "C")
            .env("MANWIDTH", "200")
            .env("MANPAGER", "cat")
            .run();
        run.expect_code(0);
        assert!(run.stdout.contains("NAME") && run.stdout.contains(expected), "{page} renders:\n{}", run.stdout);
    }
}
