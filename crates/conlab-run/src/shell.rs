//! Which shell runs a job's line, picked as GNU parallel picks it: `$PARALLEL_SHELL`, else
//! the nearest ancestor process that is a shell (the shell the user typed the command in),
//! else `$SHELL`, else `/bin/sh`. So bash-isms (`[[ ]]`, `{a,b}`, `$'...'`) work when the
//! user's shell is bash, exactly when they work under GNU parallel.
//!
//! It also answers the one question the direct-exec path needs: would the shell run the first
//! word as something other than the program of that name on PATH (a builtin, a keyword, an
//! exported bash function)? Then the line goes to the shell.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why no shell could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// The chosen shell is not an executable.
    #[error("shell `{0}` not found (from {1}); set PARALLEL_SHELL to a shell's path")]
    NotFound(String, &'static str),
    /// A shell whose quoting differs from the Bourne shell's.
    #[error(
        "shell `{0}` (from {1}) quotes differently from sh and is not supported; \
         set PARALLEL_SHELL=/bin/sh or /bin/bash"
    )]
    Unsupported(String, &'static str),
}

/// The shell that runs job lines.
#[derive(Debug, Clone)]
pub struct Shell {
    path: PathBuf,
    /// Exported bash functions (`export -f name`): they shadow programs of the same name.
    functions: HashSet<Vec<u8>>,
}

/// Builtins and keywords of bash and dash: the shell runs these itself, so a line starting
/// with one must go to the shell (`echo -e` differs between dash's builtin and /bin/echo).
const SHELL_WORDS: &[&str] = &[
    ".",
    ":",
    "[",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "cd",
    "chdir",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "case",
    "esac",
    "for",
    "select",
    "while",
    "until",
    "do",
    "done",
    "in",
    "function",
    "time",
    "{",
    "}",
    "!",
    "[[",
    "]]",
    "coproc",
];

/// Every shell GNU parallel recognises in an ancestor's `argv[0]`.
const SHELL_NAMES: &[&str] = &[
    "ash",
    "bash",
    "bsd-csh",
    "csh",
    "dash",
    "fdsh",
    "fish",
    "fizsh",
    "ksh",
    "ksh93",
    "lksh",
    "mksh",
    "pdksh",
    "posh",
    "rbash",
    "rc",
    "rush",
    "rzsh",
    "sash",
    "sh",
    "static-sh",
    "tcsh",
    "yash",
    "zsh",
    "-sh",
    "-csh",
    "-bash",
];

impl Shell {
    /// Picks the shell as GNU parallel does.
    pub fn detect() -> Result<Shell, ShellError> {
        let (path, from) = if let Some(s) = std::env::var_os("PARALLEL_SHELL") {
            (PathBuf::from(s), "$PARALLEL_SHELL")
        } else if let Some(s) = parent_shell() {
            (s, "the shell conlab was started from")
        } else if let Some(s) = std::env::var_os("SHELL").filter(|s| !s.is_empty()) {
            (PathBuf::from(s), "$SHELL")
        } else {
            (PathBuf::from("/bin/sh"), "the default")
        };
        let shown = path.display().to_string();
        let path = if is_executable(&path) {
            path
        } else {
            which(path.as_os_str().as_bytes())
                .ok_or_else(|| ShellError::NotFound(shown.clone(), from))?
        };
        let name = path.file_name().map(|n| n.as_bytes()).unwrap_or(b"");
        if name.ends_with(b"csh") || name == b"rc" {
            return Err(ShellError::Unsupported(shown, from));
        }
        Ok(Shell::with_path(path))
    }

    fn with_path(path: PathBuf) -> Shell {
        let bash = path
            .file_name()
            .is_some_and(|n| n.as_bytes().ends_with(b"bash"));
        let functions = if bash {
            std::env::vars_os()
                .filter_map(|(k, _)| {
                    let k = k.as_bytes();
                    let name = k.strip_prefix(b"BASH_FUNC_")?.strip_suffix(b"%%")?;
                    Some(name.to_vec())
                })
                .collect()
        } else {
            HashSet::new()
        };
        Shell { path, functions }
    }

    /// A shell at `path` without looking at the environment (for tests).
    pub fn for_tests(path: &str) -> Shell {
        Shell {
            path: path.into(),
            functions: HashSet::new(),
        }
    }

    /// The shell's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the shell would not run `words` as the program `words[0]` on PATH.
    pub fn needs_shell(&self, words: &[Vec<u8>]) -> bool {
        let Some(first) = words.first() else {
            return true;
        };
        if self.functions.contains(first) {
            return true;
        }
        // /bin/true and /bin/false behave as the builtins unless asked for --help/--version.
        if (first == b"true" || first == b"false")
            && !(words.len() == 2 && matches!(&words[1][..], b"--help" | b"--version"))
        {
            return false;
        }
        SHELL_WORDS.iter().any(|w| w.as_bytes() == &first[..])
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| !m.is_dir() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable `name` on PATH (GNU's `which`).
pub(crate) fn which(name: &[u8]) -> Option<PathBuf> {
    if name.contains(&b'/') {
        let p = PathBuf::from(std::ffi::OsStr::from_bytes(name));
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|dir| {
            let mut p = dir.to_vec();
            p.push(b'/');
            p.extend_from_slice(name);
            PathBuf::from(std::ffi::OsStr::from_bytes(&p))
        })
        .find(|p| is_executable(p))
}

/// GNU parallel's `parent_shell`: walks up from this process to the first whose `argv[0]` is
/// a shell's name, and finds that name on PATH.
fn parent_shell() -> Option<PathBuf> {
    let mut pid = std::process::id();
    // A process tree deeper than this is a loop in a damaged /proc.
    for _ in 0..256 {
        if pid == 0 {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or(b"");
        if let Some((name, dash)) = shell_name(argv0) {
            if name == "sh"
                && dash
                && let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
                && exe
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| SHELL_NAMES.contains(&n))
            {
                return Some(exe);
            }
            let fake: &[&str] = match (name, dash) {
                ("sh", true) => &["sh"],
                ("csh", true) => &["tcsh", "csh"],
                ("ash", true) => &["ash", "dash", "sh"],
                ("dash", true) => &["dash", "ash", "sh"],
                ("bash", true) => &["bash", "sh"],
                ("ksh", true) => &["ksh", "sh"],
                ("zsh", true) => &["zsh", "sh"],
                _ => &[],
            };
            return std::iter::once(name)
                .chain(fake.iter().copied())
                .find_map(|n| which(n.as_bytes()));
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The parent is the second field after the command name, which is in parentheses
        // and may hold spaces.
        let after = &stat[stat.rfind(')')? + 1..];
        pid = after.split_whitespace().nth(1)?.parse().ok()?;
    }
    None
}

/// The shell an `argv[0]` names (`bash`, `/bin/sh`, `-bash`, `[sh]`, `busybox sh`), and
/// whether it carried a login dash.
fn shell_name(argv0: &[u8]) -> Option<(&'static str, bool)> {
    let s = std::str::from_utf8(argv0).ok()?;
    let (s, bracketed) = match s.strip_prefix('[') {
        Some(inner) => (inner.strip_suffix(']')?, true),
        None => (s, false),
    };
    let s = if bracketed {
        s
    } else if let Some(rest) = s.strip_prefix("busybox ") {
        rest
    } else if let Some(slash) = s.split(' ').next().and_then(|w| w.rfind('/')) {
        &s[slash + 1..]
    } else {
        s
    };
    let (s, dash) = match s.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    // GNU's tail `( *$| [^(])`: nothing after the name, or a space and no `(`.
    let name = s.split(' ').next()?;
    let tail = &s[name.len()..];
    if !(tail.trim_start_matches(' ').is_empty()
        || (tail.starts_with(' ') && !tail[1..].starts_with('(')))
    {
        return None;
    }
    SHELL_NAMES
        .iter()
        .find(|n| **n == name)
        .map(|n| (n.trim_start_matches('-'), dash || n.starts_with('-')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_are_recognised_by_their_argv0_as_gnu_parallel_recognises_them() {
        for (argv0, name, dash) in [
            ("bash", Some("bash"), false),
            ("/usr/bin/bash", Some("bash"), false),
            ("-bash", Some("bash"), true),
            ("/bin/sh", Some("sh"), false),
            ("[sh]", Some("sh"), false),
            ("busybox sh", Some("sh"), false),
            ("zsh", Some("zsh"), false),
            ("sshd", None, false),
            ("/usr/bin/perl", None, false),
            ("foo.sh", None, false),
            ("flush", None, false),
        ] {
            assert_eq!(
                shell_name(argv0.as_bytes()).map(|(n, _)| n),
                name,
                "{argv0}"
            );
            if let Some((_, d)) = shell_name(argv0.as_bytes()) {
                assert_eq!(d, dash, "{argv0}");
            }
        }
    }

    #[test]
    fn builtins_and_exported_functions_go_to_the_shell() {
        let sh = Shell::for_tests("/bin/sh");
        let w = |s: &str| {
            s.split(' ')
                .map(|w| w.as_bytes().to_vec())
                .collect::<Vec<_>>()
        };
        assert!(sh.needs_shell(&w("echo a")));
        assert!(sh.needs_shell(&w("cd /")));
        assert!(!sh.needs_shell(&w("gzip a")));
        assert!(!sh.needs_shell(&w("true a")));
        assert!(sh.needs_shell(&w("true --help")));
        let mut bash = Shell::for_tests("/bin/bash");
        bash.functions.insert(b"gzip".to_vec());
        assert!(bash.needs_shell(&w("gzip a")));
    }
}
