//! GNU parallel's profiles: before the command line it reads options from `$PARALLEL`,
//! `/etc/parallel/config`, `$PARALLEL_HOME/config` (`~/.parallel/config`) and
//! `~/.parallelrc`. conlab run does not, so a run that those would change is refused (unless
//! `--plain`) rather than run differently.

use std::path::PathBuf;

/// A profile that would change what GNU parallel does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// `$PARALLEL` is set.
    #[error(
        "$PARALLEL is set: GNU parallel reads options from it and conlab run does not; \
         unset it, or pass --plain to run without it"
    )]
    Environment,
    /// A profile file holds options.
    #[error(
        "{0} sets GNU parallel options and conlab run does not read it; \
         pass --plain to run without it"
    )]
    File(String),
}

/// Refuses when `$PARALLEL` or a profile file holds options (comments and blank lines are
/// none).
pub fn refuse() -> Result<(), ProfileError> {
    if std::env::var_os("PARALLEL").is_some_and(|v| !v.is_empty()) {
        return Err(ProfileError::Environment);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let parallel_home = std::env::var_os("PARALLEL_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".parallel")));
    let mut profiles = vec![PathBuf::from("/etc/parallel/config")];
    profiles.extend(parallel_home.map(|d| d.join("config")));
    profiles.extend(home.map(|h| h.join(".parallelrc")));
    for profile in profiles {
        let Ok(text) = std::fs::read(&profile) else {
            continue;
        };
        if sets_options(&text) {
            return Err(ProfileError::File(profile.display().to_string()));
        }
    }
    Ok(())
}

fn sets_options(text: &[u8]) -> bool {
    text.split(|&b| b == b'\n')
        .any(|l| !l.trim_ascii().is_empty() && !l.trim_ascii().starts_with(b"#"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lines_that_are_not_comments_set_options() {
        assert!(!sets_options(b"# a comment\n\n   \n"));
        assert!(sets_options(b"# jobs\n-j4\n"));
    }
}
