//! The command template and GNU parallel's replacement strings, on bytes.
//!
//! GNU parallel's rules, read from its source (20221122) and checked side by side:
//!
//! - The command words are kept apart while replacement strings are found, then joined with
//!   single spaces into one shell line. A replacement string is one of the known strings
//!   (below) or its positional form `{N...}` / `{-N...}`; every other brace is text, so awk
//!   programs, `${VAR}`, JSON and `{{}}` keep their braces.
//! - A value is shell-quoted (`'...'`, a `'` as `'"'"'`) unless it is made of
//!   `[-_.+a-zA-Z0-9/]` only. When a replacement string is (part of) the first word, before any
//!   `=`, values are not quoted: the input is the command (`parallel ::: 'echo a'`). With
//!   `-q`, every word is quoted instead of the values.
//! - A non-positional string (`{}`, `{.}`...) with several arguments is repeated once per
//!   argument, separated by spaces; `{#}` and `{%}` are positional on argument 1, as GNU's
//!   definitions make them. A position beyond the arguments is empty (not `''`).
//! - Without any replacement string, ` {}` is appended.
//! - `{= perl =}` is refused with an error that names it.
//!
//! | string | value (input `/x/y.tar.gz`) |
//! |---|---|
//! | `{}` | `/x/y.tar.gz` |
//! | `{.}` | `/x/y.tar` (`s:\.[^/.]*$::`) |
//! | `{/}` | `y.tar.gz` (`s:.*/::`) |
//! | `{//}` | `/x` (Perl's `File::Basename::dirname`) |
//! | `{/.}` | `y.tar` |
//! | `{#}` | the job's sequence number, from 1 |
//! | `{%}` | the job's slot, from 1 to `-j` |
//! | `{N}`, `{-N}`, `{N.}`, `{N/}`, `{N//}`, `{N/.}` | the same, on argument N (from the end) |
//!
//! `-I`, `--extensionreplace` and the other `--*replace` options rename these strings.
//!
//! The line is then run by the shell, or executed directly when it has no shell syntax at all
//! ([`Prepared`]): the same result without the cost of a shell process.

use std::fmt;

/// One argument value: bytes, as the OS passes them (not necessarily UTF-8).
pub type Value = Vec<u8>;

/// What a replacement string turns its value into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Whole,
    NoExtension,
    Basename,
    Dirname,
    BasenameNoExtension,
    Seq,
    Slot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    /// A replacement string: on every argument (`None`) or on argument N (negative: from the
    /// end).
    Replace(Option<i64>, Kind),
}

/// The replacement strings' spellings (`-I`, `--extensionreplace`, ... rename them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strings {
    /// `{}` (`-I`, `--replace`).
    pub whole: Vec<u8>,
    /// `{.}` (`--extensionreplace`, `-U`).
    pub no_extension: Vec<u8>,
    /// `{/}` (`--basenamereplace`, `--bnr`).
    pub basename: Vec<u8>,
    /// `{//}` (`--dirnamereplace`, `--dnr`).
    pub dirname: Vec<u8>,
    /// `{/.}` (`--basenameextensionreplace`, `--bner`).
    pub basename_no_extension: Vec<u8>,
    /// `{#}` (`--seqreplace`).
    pub seq: Vec<u8>,
    /// `{%}` (`--slotreplace`).
    pub slot: Vec<u8>,
}

impl Default for Strings {
    fn default() -> Self {
        Strings {
            whole: b"{}".to_vec(),
            no_extension: b"{.}".to_vec(),
            basename: b"{/}".to_vec(),
            dirname: b"{//}".to_vec(),
            basename_no_extension: b"{/.}".to_vec(),
            seq: b"{#}".to_vec(),
            slot: b"{%}".to_vec(),
        }
    }
}

impl Strings {
    /// Longest first, as GNU parallel replaces them (a short one may be inside a long one).
    fn table(&self) -> Vec<(&[u8], Kind)> {
        let mut table = vec![
            (self.whole.as_slice(), Kind::Whole),
            (&self.no_extension, Kind::NoExtension),
            (&self.basename, Kind::Basename),
            (&self.dirname, Kind::Dirname),
            (&self.basename_no_extension, Kind::BasenameNoExtension),
            (&self.seq, Kind::Seq),
            (&self.slot, Kind::Slot),
        ];
        table.retain(|(s, _)| !s.is_empty());
        table.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        table
    }
}

/// How the template is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateOptions {
    /// The replacement strings' spellings.
    pub strings: Strings,
    /// `-q`: quote every word of the command, not the values.
    pub quote_all: bool,
    /// `-X`, `-N`: a word holding a replacement string is repeated once per argument
    /// (`x{}y` with `a b` is `xay xby`), instead of the string alone (`xa by`).
    pub context: bool,
    /// `--header`: column names, `{name}` (and `{name.}`, `{name/}`...) for column N.
    pub names: Vec<Value>,
    /// Do not append ` {}` when there is no replacement string (`--pipe`).
    pub no_append: bool,
    /// Neither append nor quote: a text, not a command (`--tagstring`, `--results` names).
    pub raw: bool,
    /// `--shellquote` (given N times): a job prints its line quoted N times instead of
    /// running it.
    pub shell_quote: u8,
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{= perl expression =}`.
    #[error(
        "`{0}`: {{= perl expression =}} replacement strings are not supported by conlab run \
         (use a shell expression on {{}} instead, e.g. \"$(basename {{}} .gz)\")"
    )]
    Perl(String),
}

/// A parsed command template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    words: Vec<Vec<Piece>>,
    /// Values are quoted (false when the input is the command itself, or with `-q`).
    quote_values: bool,
    quote_all: bool,
    context: bool,
    /// ` {}` was appended: the command had no replacement string.
    appended: bool,
    shell_quote: u8,
}

/// A job's command, ready to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Execute this program with these arguments directly: the line has no shell syntax.
    Exec {
        /// The words, unquoted.
        words: Vec<Value>,
        /// The shell line they came from (shown by `-v`, `--dry-run`, the joblog).
        line: Vec<u8>,
    },
    /// Run this line with `$SHELL -c`.
    Shell(Vec<u8>),
}

impl Prepared {
    /// The command as GNU parallel shows it (joblog, `--dry-run`, `-v`): the shell line.
    pub fn line(&self) -> &[u8] {
        match self {
            Prepared::Shell(line) | Prepared::Exec { line, .. } => line,
        }
    }
}

impl fmt::Display for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.line()))
    }
}

impl Template {
    /// Parses the command words. An empty command is `{}` unquoted: each input is a command
    /// line, as GNU parallel runs `parallel ::: 'echo a'`.
    pub fn parse(words: &[Value], options: &TemplateOptions) -> Result<Template, TemplateError> {
        let joined = words.join(&b' ');
        if let Some(open) = find(&joined, b"{=")
            && let Some(close) = find(&joined[open + 2..], b"=}")
        {
            let expr = &joined[open..open + 2 + close + 2];
            return Err(TemplateError::Perl(
                String::from_utf8_lossy(expr).into_owned(),
            ));
        }
        let table = options.strings.table();
        // `{name}` for column N: GNU makes each header name a positional replacement string.
        let named: Vec<(Vec<u8>, i64)> = options
            .names
            .iter()
            .zip(1..)
            .map(|(name, n)| ([b"{", &name[..]].concat(), n))
            .collect();
        let mut parsed: Vec<Vec<Piece>> = words
            .iter()
            .map(|w| parse_word(w, &table, &named))
            .collect();
        let any = parsed
            .iter()
            .flatten()
            .any(|p| matches!(p, Piece::Replace(..)));
        let appended = !any && !options.no_append && !options.raw;
        if appended {
            parsed.push(vec![Piece::Replace(None, Kind::Whole)]);
        }
        // GNU: `"@command" =~ /^[^ \t\n=]*\257</` means the input is (part of) the command.
        let command_from_input = parsed.first().is_some_and(|word| {
            for piece in word {
                match piece {
                    Piece::Replace(..) => return true,
                    Piece::Text(t) if t.iter().any(|b| b" \t\n=".contains(b)) => return false,
                    Piece::Text(_) => {}
                }
            }
            false
        });
        Ok(Template {
            words: parsed,
            quote_values: !command_from_input && !options.quote_all && !options.raw,
            quote_all: options.quote_all,
            context: options.context,
            appended,
            shell_quote: options.shell_quote,
        })
    }

    /// The model GNU parallel uses for this template's line lengths (see [`LengthModel`]).
    pub fn length_model(&self) -> LengthModel {
        let blank = |b: &u8| b" \t\n\r\x0b\x0c".contains(b);
        // [noncontext, context, context groups]
        let mut sizes = [0usize; 3];
        fn close(sizes: &mut [usize; 3], group: &mut usize, holds: &mut bool) {
            if *holds {
                sizes[1] += *group;
                sizes[2] += 1;
            } else {
                sizes[0] += *group;
            }
            *group = 0;
            *holds = false;
        }
        let mut strings: Vec<(Option<i64>, Kind, usize)> = Vec::new();
        for word in &self.words {
            // A group: a run of non-blank text and replacement strings (Perl's `\S*`).
            let (mut group, mut holds) = (0, false);
            for piece in word {
                match piece {
                    Piece::Text(t) => {
                        for b in t {
                            if blank(b) {
                                close(&mut sizes, &mut group, &mut holds);
                                sizes[0] += 1;
                            } else {
                                group += 1;
                            }
                        }
                    }
                    Piece::Replace(pos, kind) => {
                        holds = true;
                        match strings.iter_mut().find(|(p, k, _)| p == pos && k == kind) {
                            Some((_, _, count)) => *count += 1,
                            None => strings.push((*pos, *kind, 1)),
                        }
                    }
                }
            }
            close(&mut sizes, &mut group, &mut holds);
        }
        let [noncontext, context, context_groups] = sizes;
        LengthModel {
            noncontext: noncontext + self.words.len().saturating_sub(1),
            context,
            context_groups,
            strings,
            quote_values: self.quote_values,
            context_replace: self.context,
            factor: if self.quote_all { 3 } else { 1 },
            appended: self.appended,
        }
    }

    /// True when the template holds a replacement string.
    pub fn has_replacements(&self) -> bool {
        self.words
            .iter()
            .flatten()
            .any(|p| matches!(p, Piece::Replace(..)))
    }

    /// True when the values are substituted unquoted (the input is the command).
    pub fn input_is_command(&self) -> bool {
        !self.quote_values && !self.quote_all
    }

    /// The shell line for one job: `args` are its values (`None` for `-n0`: a job with no
    /// argument), `seq` its number, `slot` its slot.
    pub fn line(&self, args: Option<&[Value]>, seq: u64, slot: usize) -> Vec<u8> {
        let empty = [Vec::new()];
        // GNU: no arguments at all is one empty argument.
        let (args, noarg) = match args {
            Some([]) | None => (&empty[..], args.is_none()),
            Some(a) => (a, false),
        };
        if self.context {
            return self.context_line(args, noarg, seq, slot);
        }
        let mut groups: Vec<Vec<u8>> = Vec::new();
        for word in &self.words {
            let mut group = Vec::new();
            for piece in word {
                match piece {
                    Piece::Text(t) => group.extend_from_slice(t),
                    Piece::Replace(None, kind) if !matches!(kind, Kind::Seq | Kind::Slot) => {
                        for (i, arg) in args.iter().enumerate() {
                            if i > 0 {
                                // An unquoted space: ends a quoting group.
                                groups.push(std::mem::take(&mut group));
                            }
                            if !noarg {
                                self.push_value(&mut group, &apply(arg, *kind, seq, slot));
                            }
                        }
                    }
                    Piece::Replace(pos, kind) => {
                        self.push_positional(&mut group, args, noarg, *pos, *kind, seq, slot);
                    }
                }
            }
            groups.push(group);
        }
        self.join_groups(&groups)
    }

    /// `-X`: context groups (runs of text and replacement strings between blanks) that hold
    /// a non-positional string are repeated once per argument.
    fn context_line(&self, args: &[Value], noarg: bool, seq: u64, slot: usize) -> Vec<u8> {
        // Each group: its pieces, and whether an unquoted word boundary (not a blank inside
        // a word) follows it.
        let mut contexts: Vec<(Vec<&Piece>, Vec<u8>)> = Vec::new();
        let mut current: Vec<&Piece> = Vec::new();
        let blank_pieces: Vec<Vec<Piece>> = self
            .words
            .iter()
            .map(|word| {
                let mut out = Vec::new();
                for piece in word {
                    match piece {
                        Piece::Text(t) => {
                            for part in t.split_inclusive(|b| b" \t\n".contains(b)) {
                                match part.split_last() {
                                    Some((last, head)) if b" \t\n".contains(last) => {
                                        if !head.is_empty() {
                                            out.push(Piece::Text(head.to_vec()));
                                        }
                                        out.push(Piece::Text(vec![*last]));
                                    }
                                    _ => out.push(Piece::Text(part.to_vec())),
                                }
                            }
                        }
                        other => out.push(other.clone()),
                    }
                }
                out
            })
            .collect();
        let is_blank =
            |p: &Piece| matches!(p, Piece::Text(t) if t.len() == 1 && b" \t\n".contains(&t[0]));
        for (w, word) in blank_pieces.iter().enumerate() {
            for piece in word {
                if is_blank(piece) {
                    let Piece::Text(t) = piece else { continue };
                    contexts.push((std::mem::take(&mut current), t.clone()));
                } else {
                    current.push(piece);
                }
            }
            let end = if w + 1 < blank_pieces.len() {
                b" ".to_vec()
            } else {
                Vec::new()
            };
            contexts.push((std::mem::take(&mut current), end));
        }
        let mut line = Vec::new();
        for (pieces, after) in &contexts {
            let repeats = pieces.iter().any(
                |p| matches!(p, Piece::Replace(None, k) if !matches!(k, Kind::Seq | Kind::Slot)),
            );
            let copies: Vec<&[Value]> = if repeats {
                args.chunks(1).collect()
            } else {
                vec![args]
            };
            for (i, arg) in copies.iter().enumerate() {
                if i > 0 {
                    line.push(b' ');
                }
                let mut group = Vec::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => group.extend_from_slice(t),
                        Piece::Replace(None, kind) if !matches!(kind, Kind::Seq | Kind::Slot) => {
                            if !noarg {
                                self.push_value(&mut group, &apply(&arg[0], *kind, seq, slot));
                            }
                        }
                        Piece::Replace(pos, kind) => {
                            self.push_positional(&mut group, args, noarg, *pos, *kind, seq, slot);
                        }
                    }
                }
                if self.quote_all && !group.is_empty() {
                    group = quote(&group);
                }
                line.extend_from_slice(&group);
            }
            line.extend_from_slice(after);
        }
        line
    }

    #[allow(clippy::too_many_arguments)]
    fn push_positional(
        &self,
        group: &mut Vec<u8>,
        args: &[Value],
        noarg: bool,
        pos: Option<i64>,
        kind: Kind,
        seq: u64,
        slot: usize,
    ) {
        // Perl's indexing: `$arg[$n + $p]` for p <= 0, and a negative index counts from the
        // end once more (`{-3}` of two arguments is the last).
        let n = args.len() as i64;
        let index = match pos.unwrap_or(1) {
            p if p > 0 => usize::try_from(p - 1).ok(),
            p => {
                let i = n + p;
                usize::try_from(if i < 0 { n + i } else { i }).ok()
            }
        };
        if let Some(value) = index.and_then(|i| args.get(i))
            && (!noarg || matches!(kind, Kind::Seq | Kind::Slot))
        {
            self.push_value(group, &apply(value, kind, seq, slot));
        }
    }

    fn join_groups(&self, groups: &[Vec<u8>]) -> Vec<u8> {
        let mut line = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            if self.quote_all {
                if !group.is_empty() {
                    line.extend_from_slice(&quote(group));
                }
            } else {
                line.extend_from_slice(group);
            }
        }
        line
    }

    fn push_value(&self, group: &mut Vec<u8>, value: &[u8]) {
        if self.quote_values {
            group.extend_from_slice(&quote(value));
        } else {
            group.extend_from_slice(value);
        }
    }

    /// The command for one job, as [`Template::line`], and how to start it.
    pub fn prepare(
        &self,
        args: Option<&[Value]>,
        seq: u64,
        slot: usize,
        shell: &crate::shell::Shell,
    ) -> Prepared {
        let mut line = self.line(args, seq, slot);
        if self.shell_quote > 0 {
            // GNU prints it with a small perl echo; printf prints the same bytes.
            for _ in 0..self.shell_quote {
                line = quote(&line);
            }
            let mut shown = b"printf '%s\\n' ".to_vec();
            shown.extend_from_slice(&quote(&line));
            return Prepared::Exec {
                words: vec![b"printf".to_vec(), b"%s\n".to_vec(), line],
                line: shown,
            };
        }
        match direct_words(&line).filter(|w| !shell.needs_shell(w)) {
            Some(words) => Prepared::Exec { words, line },
            None => Prepared::Shell(line),
        }
    }
}

/// GNU parallel's estimate of a job's command line length (`CommandLine::len`, 20221122),
/// which decides how many records `-X`, `-m` and `--xargs` put on one line, and when a line
/// is too long to run. It is an estimate, kept as GNU keeps it, not the length of the line
/// [`Template::line`] writes: the point is to split where GNU splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthModel {
    /// The text outside context groups, with the blanks between words.
    noncontext: usize,
    /// The text of the context groups (blank-free runs holding a replacement string).
    context: usize,
    context_groups: usize,
    /// Each distinct replacement string, with the number of times it is used.
    strings: Vec<(Option<i64>, Kind, usize)>,
    quote_values: bool,
    context_replace: bool,
    /// `-q`: GNU's pessimistic factor of 3.
    factor: usize,
    /// The command's ` {}` was appended (see [`LengthModel::count_also`]).
    appended: bool,
}

impl LengthModel {
    /// The replacement strings of `other` (`--tagstring`, `--results`) count once each when
    /// the command does not use them, as GNU counts them. GNU counts these before it appends
    /// ` {}` to a command without replacement strings, so then the appended `{}` adds one to
    /// theirs.
    pub fn count_also(&mut self, other: &Template) {
        let mut seen: Vec<(Option<i64>, Kind)> = Vec::new();
        for piece in other.words.iter().flatten() {
            if let Piece::Replace(pos, kind) = piece
                && !seen.contains(&(*pos, *kind))
            {
                seen.push((*pos, *kind));
                self.count_once(*pos, *kind);
            }
        }
    }

    /// `--bar`: GNU counts `{}` even when the command does not use it.
    pub fn count_whole(&mut self) {
        self.count_once(None, Kind::Whole);
    }

    fn count_once(&mut self, pos: Option<i64>, kind: Kind) {
        match self
            .strings
            .iter_mut()
            .find(|(p, k, _)| *p == pos && *k == kind)
        {
            // The appended `{}` came after this count.
            Some((_, _, count)) if self.appended && pos.is_none() && kind == Kind::Whole => {
                // Once: GNU's first count is `||= 1`.
                self.appended = false;
                *count += 1;
            }
            Some(_) => {}
            None => self.strings.push((pos, kind, 1)),
        }
    }

    /// Adds what one record adds to `sums`, per replacement string: GNU's
    /// `CommandLine::push`. `sums` has one entry per string ([`LengthModel::strings`]).
    pub fn add_record(&self, record: &[Value], seq: u64, slot: usize, sums: &mut [usize]) {
        let quoted = |v: &[u8]| {
            if self.quote_values {
                quoted_len(v)
            } else {
                v.len()
            }
        };
        let length = |v: &[u8], kind: Kind| match kind {
            // The common case, without building the value.
            Kind::Whole => quoted(v),
            _ => quoted(&apply(v, kind, seq, slot)),
        };
        for (&(pos, kind, _), sum) in self.strings.iter().zip(sums.iter_mut()) {
            // `{#}` and `{%}` are positional on the first column in GNU's definitions.
            let pos = match kind {
                Kind::Seq | Kind::Slot => Some(pos.unwrap_or(1)),
                _ => pos,
            };
            *sum += match pos {
                Some(p) => {
                    let n = record.len() as i64;
                    let col = if p > 0 { p - 1 } else { n + p };
                    usize::try_from(col)
                        .ok()
                        .and_then(|c| record.get(c))
                        .map_or(0, |v| length(v, kind))
                }
                None => record.iter().map(|v| length(v, kind)).sum(),
            };
        }
    }

    /// How many replacement strings the model counts (the length of the sums).
    pub fn strings(&self) -> usize {
        self.strings.len()
    }

    /// The length GNU computes for a line of `records` records of `width` columns each,
    /// `sums` being the per-string sums of [`LengthModel::add_record`].
    pub fn len(&self, sums: &[usize], records: usize, width: usize) -> usize {
        let recargs = records * width;
        let mut len = self.noncontext;
        if self.context_replace {
            len += recargs * self.context;
            for (&(_, _, count), sum) in self.strings.iter().zip(sums) {
                len += sum * count;
            }
            len += recargs.saturating_sub(1) * self.context_groups;
        } else {
            len += self.context;
            for (&(_, _, count), sum) in self.strings.iter().zip(sums) {
                len += (recargs.saturating_sub(1) + sum) * count;
            }
        }
        len * self.factor
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_word(word: &[u8], table: &[(&[u8], Kind)], named: &[(Vec<u8>, i64)]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = Vec::new();
    let mut i = 0;
    while i < word.len() {
        match replacement_at(&word[i..], table).or_else(|| named_at(&word[i..], named)) {
            Some((len, piece)) => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(piece);
                i += len;
            }
            None => {
                text.push(word[i]);
                i += 1;
            }
        }
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

/// The replacement string at the start of `rest`: its length and meaning.
fn replacement_at(rest: &[u8], table: &[(&[u8], Kind)]) -> Option<(usize, Piece)> {
    for &(string, kind) in table {
        if rest.starts_with(string) {
            return Some((string.len(), Piece::Replace(None, kind)));
        }
        // The positional form exists for strings that start with `{`: `{}` -> `{2}`, `{-1}`.
        if let Some(tail) = string.strip_prefix(b"{")
            && rest.first() == Some(&b'{')
        {
            let minus = usize::from(rest.get(1) == Some(&b'-'));
            let digits = rest[1 + minus..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let number_end = 1 + minus + digits;
            // GNU's pattern allows blanks after the number: `{1 }`.
            let after = number_end
                + rest[number_end..]
                    .iter()
                    .take_while(|b| b" \t\n\r\x0b\x0c".contains(b))
                    .count();
            if digits > 0 && rest[after..].starts_with(tail) {
                let number = &rest[1..number_end];
                let len = after + tail.len();
                // GNU tests the number for truth: `{0}` is `{}`, but `{00}` and `{-0}` are
                // positions past the end.
                if number == b"0" {
                    return Some((len, Piece::Replace(None, kind)));
                }
                let n: i64 = std::str::from_utf8(number).ok()?.parse().ok()?;
                return Some((len, Piece::Replace(Some(n), kind)));
            }
        }
    }
    None
}

/// `{name}`, `{name.}`, `{name/}`, `{name//}`, `{name/.}` for a `--header` column.
fn named_at(rest: &[u8], named: &[(Vec<u8>, i64)]) -> Option<(usize, Piece)> {
    let suffixes: [(&[u8], Kind); 5] = [
        (b"//}", Kind::Dirname),
        (b"/.}", Kind::BasenameNoExtension),
        (b"/}", Kind::Basename),
        (b".}", Kind::NoExtension),
        (b"}", Kind::Whole),
    ];
    for (open, n) in named {
        let Some(tail) = rest.strip_prefix(&open[..]) else {
            continue;
        };
        for (suffix, kind) in suffixes {
            if tail.starts_with(suffix) {
                return Some((open.len() + suffix.len(), Piece::Replace(Some(*n), kind)));
            }
        }
    }
    None
}

/// A replacement string applied to one value.
fn apply(value: &[u8], kind: Kind, seq: u64, slot: usize) -> Vec<u8> {
    match kind {
        Kind::Whole => value.to_vec(),
        Kind::NoExtension => no_extension(value).to_vec(),
        Kind::Basename => basename(value),
        Kind::Dirname => dirname(value),
        Kind::BasenameNoExtension => no_extension(&basename(value)).to_vec(),
        Kind::Seq => seq.to_string().into_bytes(),
        Kind::Slot => slot.to_string().into_bytes(),
    }
}

/// `s:\.[^/.]*$::`: the last dot starts the extension unless a `/` follows it.
fn no_extension(value: &[u8]) -> &[u8] {
    match value.iter().rposition(|&b| b == b'.') {
        Some(dot) if !value[dot..].contains(&b'/') => &value[..dot],
        _ => value,
    }
}

/// `s:.*/::`: Perl's `.` stops at a newline, so the first line holding a `/` loses everything
/// up to its last `/`.
fn basename(value: &[u8]) -> Vec<u8> {
    let mut start = 0;
    for line in value.split(|&b| b == b'\n') {
        if let Some(slash) = line.iter().rposition(|&b| b == b'/') {
            let mut out = value[..start].to_vec();
            out.extend_from_slice(&value[start + slash + 1..]);
            return out;
        }
        start += line.len() + 1;
    }
    value.to_vec()
}

/// Perl's `File::Basename::dirname` on Unix, which `{//}` is.
fn dirname(value: &[u8]) -> Vec<u8> {
    fn fileparse(p: &[u8]) -> (&[u8], &[u8]) {
        match p.iter().rposition(|&b| b == b'/') {
            Some(i) => (&p[..=i], &p[i + 1..]),
            None => (b"./", p),
        }
    }
    // `s{(.)/*\z}{$1}s`: trailing slashes go, but not the first character.
    fn strip(d: &[u8]) -> &[u8] {
        let kept = d.len() - d.iter().rev().take_while(|&&b| b == b'/').count();
        &d[..kept.max(1.min(d.len()))]
    }
    let (dir, base) = fileparse(value);
    let mut dir = strip(dir);
    if base.is_empty() {
        dir = strip(fileparse(dir).0);
    }
    dir.to_vec()
}

/// The length of [`quote`]`(s)`, without building it.
fn quoted_len(s: &[u8]) -> usize {
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"-_.+/".contains(b);
    if s.is_empty() {
        return 2;
    }
    if s.iter().all(safe) {
        return s.len();
    }
    let quotes = s.iter().filter(|&&b| b == b'\'').count();
    // `'...'` with each `'` as `'"'"'`, less GNU's `''` at either end.
    2 + s.len() + 4 * quotes
        - if s.first() == Some(&b'\'') { 2 } else { 0 }
        - if s.last() == Some(&b'\'') { 2 } else { 0 }
}

/// Quotes `s` for a Bourne shell as GNU parallel does: as it is when made of
/// `[-_.+a-zA-Z0-9/]`, else in single quotes with `'` as `'"'"'`.
pub fn quote(s: &[u8]) -> Vec<u8> {
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"-_.+/".contains(b);
    if s.is_empty() {
        return b"''".to_vec();
    }
    if s.iter().all(safe) {
        return s.to_vec();
    }
    let mut out = vec![b'\''];
    for &b in s {
        if b == b'\'' {
            out.extend_from_slice(b"'\"'\"'");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    // GNU: `s/^''//; s/''$//`.
    let start = if out.starts_with(b"''") { 2 } else { 0 };
    let end = if out.len() >= start + 2 && out.ends_with(b"''") {
        out.len() - 2
    } else {
        out.len()
    };
    out[start..end].to_vec()
}

/// The words of `line` when it has no shell syntax at all: blanks between words, plain
/// characters, `'...'` and `"'"` (the quoting [`quote`] writes). `None` for anything a shell
/// would treat specially: then only the shell gives the same result.
fn direct_words(line: &[u8]) -> Option<Vec<Value>> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-_.+/,:@%".contains(&b) || b >= 0x80;
    let mut words: Vec<Value> = Vec::new();
    let mut word = Vec::new();
    let mut in_word = false;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        match b {
            b' ' | b'\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            b'\'' => {
                let close = line[i + 1..].iter().position(|&c| c == b'\'')?;
                word.extend_from_slice(&line[i + 1..i + 1 + close]);
                in_word = true;
                i += close + 1;
            }
            b'"' if line[i..].starts_with(b"\"'\"") => {
                word.push(b'\'');
                in_word = true;
                i += 2;
            }
            // `=` is an assignment only in the first word (`V=x cmd` needs the shell).
            b'=' if !words.is_empty() => {
                word.push(b);
                in_word = true;
            }
            _ if plain(b) => {
                word.push(b);
                in_word = true;
            }
            _ => return None,
        }
        i += 1;
    }
    if in_word {
        words.push(word);
    }
    (!words.is_empty()).then_some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::Shell;

    fn v(s: &str) -> Value {
        s.as_bytes().to_vec()
    }

    fn parse(words: &[&str]) -> Template {
        let words: Vec<Value> = words.iter().map(|w| v(w)).collect();
        Template::parse(&words, &TemplateOptions::default()).unwrap()
    }

    fn line(t: &Template, args: &[&str]) -> String {
        let args: Vec<Value> = args.iter().map(|a| v(a)).collect();
        String::from_utf8(t.line(Some(&args), 1, 1)).unwrap()
    }

    #[test]
    fn every_replacement_string_matches_gnu_parallel() {
        // parallel --dry-run 'echo {#} {%} {} {1} {2} {.} {/} {//} {/.}' ::: /x/y.tar.gz ::: q
        let t = parse(&["echo {#} {%} {} {1} {2} {.} {/} {//} {/.} {-1}"]);
        assert_eq!(
            line(&t, &["/x/y.tar.gz", "q"]),
            "echo 1 1 /x/y.tar.gz q /x/y.tar.gz q /x/y.tar q y.tar.gz q /x . y.tar q q"
        );
    }

    #[test]
    fn braces_that_are_no_replacement_string_stay_and_do_not_stop_the_others() {
        let t = parse(&[
            "awk '{print $1}' {}",
            "{{}}",
            "${HOME}{}",
            "{x}",
            "{0}{00}{-0}{01}",
        ]);
        assert_eq!(line(&t, &["f"]), "awk '{print $1}' f {f} ${HOME}f {x} ff");
        assert!(matches!(
            Template::parse(&[v("echo {= s/a/b/ =}")], &TemplateOptions::default()),
            Err(TemplateError::Perl(e)) if e == "{= s/a/b/ =}"
        ));
    }

    #[test]
    fn paths_are_cut_as_perl_cuts_them() {
        for (input, dir, base, noext) in [
            ("a/b/", "a", "", "a/b/"),
            ("a//b", "a", "b", "a//b"),
            ("/a", "/", "a", "/a"),
            ("/", "/", "", "/"),
            ("a", ".", "a", "a"),
            ("", ".", "", ""),
            ("//a", "/", "a", "//a"),
            ("a//", ".", "", "a//"),
            (".hidden", ".", ".hidden", ""),
            ("dir.x/file", "dir.x", "file", "dir.x/file"),
            ("x.", ".", "x.", "x"),
        ] {
            assert_eq!(
                dirname(input.as_bytes()),
                dir.as_bytes(),
                "dirname {input:?}"
            );
            assert_eq!(
                basename(input.as_bytes()),
                base.as_bytes(),
                "basename {input:?}"
            );
            assert_eq!(
                no_extension(input.as_bytes()),
                noext.as_bytes(),
                "{input:?}"
            );
        }
        assert_eq!(basename(b"x\ny/z"), b"x\nz");
    }

    #[test]
    fn values_are_quoted_as_gnu_quotes_them() {
        for (value, quoted) in [
            ("a b", "'a b'"),
            ("it's", "'it'\"'\"'s'"),
            ("'a", "\"'\"'a'"),
            ("a'", "'a'\"'\""),
            ("'", "\"'\""),
            ("", "''"),
            ("a,b", "'a,b'"),
            ("a/b-c_d.e+f", "a/b-c_d.e+f"),
        ] {
            assert_eq!(String::from_utf8(quote(value.as_bytes())).unwrap(), quoted);
            let words = direct_words(&quote(value.as_bytes()));
            assert_eq!(words, Some(vec![v(value)]), "{value:?} round trip");
        }
    }

    #[test]
    fn several_arguments_repeat_non_positional_strings_and_missing_positions_are_empty() {
        let t = parse(&["echo", "x{}y", "{#}", "{3}", "{-3}", "{-5}", "{1 }"]);
        assert_eq!(line(&t, &["a", "b c"]), "echo xa 'b c'y 1  'b c'  a");
        let t = parse(&["echo", "{2}"]);
        assert_eq!(line(&t, &["a", ""]), "echo ''");
    }

    #[test]
    fn without_a_replacement_string_the_inputs_are_appended() {
        assert_eq!(line(&parse(&["gzip", "-9"]), &["a b"]), "gzip -9 'a b'");
        let t = parse(&["echo", "x"]);
        assert_eq!(String::from_utf8(t.line(None, 1, 1)).unwrap(), "echo x ");
    }

    #[test]
    fn an_input_that_is_the_command_is_not_quoted() {
        let t = parse(&[]);
        assert!(t.input_is_command());
        assert_eq!(line(&t, &["echo b;echo c"]), "echo b;echo c");
        assert_eq!(line(&parse(&["{}", "x"]), &["echo a"]), "echo a x");
        assert_eq!(line(&parse(&["V={} cmd"]), &["a b"]), "V='a b' cmd");
        let quote_all = TemplateOptions {
            quote_all: true,
            ..TemplateOptions::default()
        };
        let words: Vec<Value> = ["echo", "x{}y", "a b"].iter().map(|w| v(w)).collect();
        let t = Template::parse(&words, &quote_all).unwrap();
        assert_eq!(line(&t, &["a", "b c"]), "echo xa 'b cy' 'a b'");
    }

    #[test]
    fn renamed_strings_replace_the_defaults() {
        let options = TemplateOptions {
            strings: Strings {
                whole: v(",,"),
                ..Strings::default()
            },
            ..TemplateOptions::default()
        };
        let t = Template::parse(&[v("echo ,, {} {.}")], &options).unwrap();
        assert_eq!(line(&t, &["a.b"]), "echo a.b {} a");
    }

    #[test]
    fn quoted_len_is_the_length_of_quote() {
        for s in [
            "",
            "a",
            "a b",
            "'",
            "''",
            "'a'",
            "a'b",
            "it's",
            "x'",
            "'x",
            "safe-_.+/9",
            "é",
        ] {
            assert_eq!(quoted_len(s.as_bytes()), quote(s.as_bytes()).len(), "{s:?}");
        }
    }

    #[test]
    fn context_replace_repeats_the_whole_word() {
        // parallel -N2 echo x{}y {1}-{2} ::: a b c
        let options = TemplateOptions {
            context: true,
            ..TemplateOptions::default()
        };
        let words: Vec<Value> = ["echo", "x{}y", "{1}-{2}"].iter().map(|w| v(w)).collect();
        let t = Template::parse(&words, &options).unwrap();
        assert_eq!(line(&t, &["a", "b"]), "echo xay xby a-b");
        assert_eq!(line(&t, &["c"]), "echo xcy c-");
        let t = Template::parse(&[v("echo")], &options).unwrap();
        assert_eq!(line(&t, &["a", "b c"]), "echo a 'b c'");
    }

    #[test]
    fn header_names_are_positions_and_tagstrings_are_not_appended_to() {
        let options = TemplateOptions {
            names: vec![v("n"), v("v")],
            ..TemplateOptions::default()
        };
        let t = Template::parse(&[v("echo {n}={v} {v.} {nv}")], &options).unwrap();
        assert_eq!(line(&t, &["a", "1.x"]), "echo a=1.x 1 {nv}");
        let tag = TemplateOptions {
            raw: true,
            ..TemplateOptions::default()
        };
        let t = Template::parse(&[v("{}-{#}:")], &tag).unwrap();
        assert_eq!(line(&t, &["a b"]), "a b-1:");
        assert_eq!(
            line(&Template::parse(&[v("T")], &tag).unwrap(), &["a"]),
            "T"
        );
    }

    #[test]
    fn only_lines_without_shell_syntax_are_executed_directly() {
        let shell = Shell::for_tests("/bin/sh");
        let exec = |l: &str| match parse(&[l]).prepare(Some(&[v("x y")]), 1, 1, &shell) {
            Prepared::Exec { words, .. } => Some(words.len()),
            Prepared::Shell(_) => None,
        };
        assert_eq!(exec("gzip -9 {}"), Some(3));
        assert_eq!(exec("dd if={} of=/dev/null"), Some(3));
        for shell_line in [
            "echo {}",
            "cd / && ls {}",
            "V=1 env {}",
            "ls {} | wc",
            "ls ~ {}",
            "ls a\\ b {}",
            "ls \"$x\" {}",
            "ls {a,b} {}",
            "ls * {}",
        ] {
            assert_eq!(exec(shell_line), None, "{shell_line}");
        }
    }
}
