//! The command template and GNU parallel's replacement strings.
//!
//! The command is the words after the options, joined with spaces into one line, as GNU
//! parallel does. Replacement strings are substituted shell-quoted, so an input with spaces
//! or `$` stays one literal argument. Then:
//!
//! - if the line uses the shell (pipes, redirections, `;`, `$`, globs, quotes...), it runs as
//!   `sh -c LINE`;
//! - otherwise it is split into words exactly as `sh` would split it (the only quoting left is
//!   ours) and executed directly: no shell process, which halves the cost of a small job.
//!
//! | string | value (input `/x/y.tar.gz`) |
//! |---|---|
//! | `{}` | `/x/y.tar.gz` (several sources: every value, space-separated) |
//! | `{.}` | `/x/y.tar` |
//! | `{/}` | `y.tar.gz` |
//! | `{//}` | `/x` |
//! | `{/.}` | `y.tar` |
//! | `{#}` | the job's sequence number, from 1 |
//! | `{%}` | the job's slot, from 1 to `-j` |
//! | `{N}`, `{N.}`, `{N/}`, `{N//}`, `{N/.}` | the same, on source (or column) N only |
//!
//! Without any replacement string, the inputs are appended (` {}`). A `{...}` that is none of
//! these is left as it is, as GNU parallel does.

use std::fmt;

/// How one value is turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Whole,
    NoExtension,
    Basename,
    Dirname,
    BasenameNoExtension,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A value: all arguments (`None`) or argument N (1-based).
    Value(Option<usize>, Transform),
    Seq,
    Slot,
}

/// A parsed command template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// The line needs a shell (computed without the replacement strings).
    shell: bool,
}

/// A job's command, ready to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Execute this program with these arguments directly.
    Exec(Vec<String>),
    /// Run this line with `sh -c`.
    Shell(String),
}

impl Prepared {
    /// The command as GNU parallel shows it (joblog, `--dry-run`): a shell line.
    pub fn line(&self) -> String {
        match self {
            Prepared::Shell(line) => line.clone(),
            Prepared::Exec(words) => words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "),
        }
    }
}

impl fmt::Display for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

/// Words that only a shell knows (builtins and keywords): a line starting with one runs in `sh`.
const SHELL_WORDS: &[&str] = &[
    ":", ".", "alias", "break", "case", "cd", "command", "continue", "eval", "exec", "exit",
    "export", "for", "function", "hash", "if", "read", "readonly", "return", "set", "shift",
    "source", "time", "times", "trap", "type", "ulimit", "umask", "unalias", "unset", "until",
    "wait", "while", "{", "!",
];

/// Characters that make a line need `sh`.
const SHELL_CHARS: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '#', '~',
    '=', '\n', '{', '}', '!',
];

impl Template {
    /// Parses the command words; an empty command is `echo` (GNU parallel's default).
    pub fn parse(words: &[String]) -> Template {
        let line = if words.is_empty() {
            "echo".to_string()
        } else {
            words.join(" ")
        };
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = line.as_str();
        while let Some(open) = rest.find('{') {
            let Some(len) = rest[open..].find('}') else {
                break;
            };
            let inner = &rest[open + 1..open + len];
            match placeholder(inner) {
                Some(part) => {
                    text.push_str(&rest[..open]);
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                }
                None => text.push_str(&rest[..=open + len]),
            }
            rest = &rest[open + len + 1..];
        }
        text.push_str(rest);
        // Any replacement string, `{#}` and `{%}` included, means "do not append" (as GNU).
        let has_value = !parts.iter().all(|p| matches!(p, Part::Text(_)));
        let first_word = line.split_whitespace().next().unwrap_or("");
        let builtin = SHELL_WORDS.contains(&first_word);
        let shell = parts
            .iter()
            .chain([Part::Text(text.clone())].iter())
            .any(|p| matches!(p, Part::Text(t) if t.contains(SHELL_CHARS)))
            || builtin;
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if !has_value {
            parts.push(Part::Text(" ".into()));
            parts.push(Part::Value(None, Transform::Whole));
        }
        Template { parts, shell }
    }

    /// True when the line is run by `sh -c`.
    pub fn uses_shell(&self) -> bool {
        self.shell
    }

    /// The command for one job: `args` are its input values, `seq` its number, `slot` its slot.
    pub fn prepare(&self, args: &[String], seq: u64, slot: usize) -> Prepared {
        let mut line = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => line.push_str(t),
                Part::Seq => line.push_str(&seq.to_string()),
                Part::Slot => line.push_str(&slot.to_string()),
                Part::Value(None, t) => {
                    let quoted: Vec<String> =
                        args.iter().map(|a| quote(&transform(a, *t))).collect();
                    line.push_str(&quoted.join(" "));
                }
                Part::Value(Some(n), t) => {
                    let value = args.get(n - 1).map(String::as_str).unwrap_or("");
                    line.push_str(&quote(&transform(value, *t)));
                }
            }
        }
        if self.shell {
            Prepared::Shell(line)
        } else {
            Prepared::Exec(split_words(&line))
        }
    }
}

fn placeholder(inner: &str) -> Option<Part> {
    let transform = |suffix: &str| match suffix {
        "" => Some(Transform::Whole),
        "." => Some(Transform::NoExtension),
        "/" => Some(Transform::Basename),
        "//" => Some(Transform::Dirname),
        "/." => Some(Transform::BasenameNoExtension),
        _ => None,
    };
    match inner {
        "#" => return Some(Part::Seq),
        "%" => return Some(Part::Slot),
        _ => {}
    }
    let digits = inner.chars().take_while(char::is_ascii_digit).count();
    let t = transform(&inner[digits..])?;
    if digits == 0 {
        return Some(Part::Value(None, t));
    }
    match inner[..digits].parse::<usize>() {
        Ok(n) if n >= 1 => Some(Part::Value(Some(n), t)),
        _ => None,
    }
}

fn transform(value: &str, t: Transform) -> String {
    let base = |v: &str| v.rsplit('/').next().unwrap_or(v).to_string();
    let strip = |v: &str| {
        let cut = v.rfind('/').map_or(0, |i| i + 1);
        // As GNU parallel: the last dot of the last path component starts the extension,
        // even a leading one (`.hidden` -> ``).
        match v[cut..].rfind('.') {
            Some(dot) => v[..cut + dot].to_string(),
            None => v.to_string(),
        }
    };
    match t {
        Transform::Whole => value.to_string(),
        Transform::NoExtension => strip(value),
        Transform::Basename => base(value),
        Transform::Dirname => match value.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => value[..i].to_string(),
            None => ".".to_string(),
        },
        Transform::BasenameNoExtension => strip(&base(value)),
    }
}

/// Quotes `s` for `sh`: as it is when that is safe, else in single quotes.
pub fn quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Splits a line into words as `sh` does for a line with no shell syntax but our own quoting:
/// blanks separate, `'...'` is literal, `\x` is `x`.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    fn args(s: &[&str]) -> Vec<String> {
        words(s)
    }

    #[test]
    fn every_replacement_string_matches_gnu_parallel() {
        // parallel -k 'echo {#} {%} {} {1} {2} {.} {/} {//} {/.}' ::: /x/y.tar.gz ::: q
        let t = Template::parse(&words(&["echo {#} {%} {} {1} {2} {.} {/} {//} {/.}"]));
        let line = t.prepare(&args(&["/x/y.tar.gz", "q"]), 1, 1);
        assert_eq!(
            line,
            Prepared::Exec(words(&[
                "echo",
                "1",
                "1",
                "/x/y.tar.gz",
                "q",
                "/x/y.tar.gz",
                "q",
                "/x/y.tar",
                "q",
                "y.tar.gz",
                "q",
                "/x",
                ".",
                "y.tar",
                "q"
            ]))
        );
    }

    #[test]
    fn extensions_are_cut_as_gnu_parallel_cuts_them() {
        let t = Template::parse(&words(&["echo {.}"]));
        for (input, cut) in [
            ("a.b.c", "a.b"),
            (".hidden", ""),
            ("dir.x/file", "dir.x/file"),
            ("x.", "x"),
        ] {
            let expected = if cut.is_empty() {
                vec!["echo".to_string(), String::new()]
            } else {
                words(&["echo", cut])
            };
            assert_eq!(
                t.prepare(&args(&[input]), 1, 1),
                Prepared::Exec(expected),
                "{input}"
            );
        }
    }

    #[test]
    fn seq_and_slot_count_as_replacement_strings() {
        let t = Template::parse(&words(&["echo {%} {#}"]));
        assert_eq!(
            t.prepare(&args(&["a"]), 2, 1),
            Prepared::Exec(words(&["echo", "1", "2"]))
        );
    }

    #[test]
    fn without_a_replacement_string_the_inputs_are_appended() {
        let t = Template::parse(&words(&["gzip", "-9"]));
        assert_eq!(
            t.prepare(&args(&["a b"]), 1, 1),
            Prepared::Exec(words(&["gzip", "-9", "a b"]))
        );
        let t = Template::parse(&[]);
        assert_eq!(
            t.prepare(&args(&["x"]), 1, 1),
            Prepared::Exec(words(&["echo", "x"]))
        );
    }

    #[test]
    fn shell_syntax_runs_through_sh_with_inputs_quoted() {
        let t = Template::parse(&words(&["echo", "{}", "|", "wc", "-c"]));
        assert!(t.uses_shell());
        assert_eq!(
            t.prepare(&args(&["it's $HOME"]), 1, 1),
            Prepared::Shell("echo 'it'\\''s $HOME' | wc -c".into())
        );
        assert!(!Template::parse(&words(&["gzip", "{}"])).uses_shell());
        assert!(
            Template::parse(&words(&["exit", "{}"])).uses_shell(),
            "a builtin needs sh"
        );
    }

    #[test]
    fn unknown_braces_are_left_alone_and_missing_sources_are_empty() {
        let t = Template::parse(&words(&["echo", "{x}", "{3}"]));
        assert!(t.uses_shell(), "a literal brace is shell syntax");
        assert_eq!(
            t.prepare(&args(&["a"]), 1, 1),
            Prepared::Shell("echo {x} ''".into())
        );
    }

    #[test]
    fn quoting_round_trips_through_the_word_splitter() {
        for s in ["plain", "with space", "it's", "", "$x", "a\\b", "tab\there"] {
            assert_eq!(split_words(&quote(s)), vec![s.to_string()], "{s:?}");
        }
    }
}
