//! `-j`: how many jobs run at once, as GNU parallel reads it (its `user_requested_processes`).

/// A `-j` value that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotsError {
    /// Not a form `-j` takes.
    #[error(
        "bad -j `{0}`: use a number (4), the cores plus or minus N (+1, -1), a share of the \
         cores (50%), or 0 (as many as the jobs need)"
    )]
    Bad(String),
    /// The form gives no slot at all (`-j -4` on 2 cores).
    #[error("-j `{0}` gives {1} job slots on {2} cores: cannot run any jobs")]
    NoSlots(String, i64, usize),
    /// A file name: GNU re-reads the slot count from it as jobs finish, conlab does not yet.
    #[error(
        "-j `{0}` is a file: reading the slot count from a file is not supported by conlab run yet"
    )]
    File(String),
}

/// As many slots as `-j 0` asks for: GNU parallel runs as many as its file descriptors allow
/// (252 at the usual limit of 1024); slots start only as jobs need them.
pub const UNLIMITED: usize = 256;

/// The job slots `spec` asks for on a machine of `cores`: `N`, `+N`/`-N` (the cores plus or
/// minus N), `N%` of the cores (rounded up), or `0` for as many as possible.
///
/// ```
/// assert_eq!(conlab_run::slots("4", 2), Ok(4));
/// assert_eq!(conlab_run::slots("+1", 2), Ok(3));
/// assert_eq!(conlab_run::slots("50%", 4), Ok(2));
/// assert!(conlab_run::slots("four", 2).is_err());
/// ```
pub fn slots(spec: &str, cores: usize) -> Result<usize, SlotsError> {
    let bad = || SlotsError::Bad(spec.to_string());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let count: f64 = if let Some(n) = spec.strip_prefix('+').filter(|n| digits(n)) {
        cores as f64 + n.parse::<f64>().map_err(|_| bad())?
    } else if let Some(n) = spec.strip_prefix('-').filter(|n| digits(n)) {
        cores as f64 - n.parse::<f64>().map_err(|_| bad())?
    } else if let Some(p) = spec.strip_suffix('%') {
        let (whole, frac) = p.split_once('.').unwrap_or((p, "0"));
        if !(digits(whole) && digits(frac)) {
            return Err(bad());
        }
        cores as f64 * p.parse::<f64>().map_err(|_| bad())? / 100.0
    } else if digits(spec) {
        match spec.parse::<u64>().map_err(|_| bad())? {
            0 => return Ok(UNLIMITED),
            n => n.min(usize::MAX as u64) as f64,
        }
    } else if std::path::Path::new(spec).is_file() {
        return Err(SlotsError::File(spec.to_string()));
    } else {
        return Err(bad());
    };
    let count = count.ceil();
    if count < 1.0 {
        return Err(SlotsError::NoSlots(spec.to_string(), count as i64, cores));
    }
    Ok(count.min(usize::MAX as f64) as usize)
}

/// `-j FILE`: the slot count written in `file` (any form [`slots`] takes).
pub fn slots_from_file(file: &std::path::Path, cores: usize) -> Result<usize, SlotsError> {
    let text =
        std::fs::read_to_string(file).map_err(|_| SlotsError::Bad(file.display().to_string()))?;
    match slots(text.trim(), cores) {
        Err(SlotsError::File(_)) => Err(SlotsError::Bad(text.trim().to_string())),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_take_gnu_parallels_forms() {
        assert_eq!(slots("3", 2), Ok(3));
        assert_eq!(slots("0", 2), Ok(UNLIMITED));
        assert_eq!(slots("100%", 2), Ok(2));
        assert_eq!(slots("150%", 2), Ok(3));
        assert_eq!(slots("50%", 2), Ok(1));
        assert_eq!(slots("1%", 2), Ok(1));
        assert_eq!(slots("+1", 2), Ok(3));
        assert_eq!(slots("+0", 2), Ok(2));
        assert_eq!(slots("-1", 2), Ok(1));
        assert!(matches!(slots("-5", 2), Err(SlotsError::NoSlots(..))));
        assert!(matches!(slots("0%", 2), Err(SlotsError::NoSlots(..))));
        for bad in ["many", "-5%", "nan%", "", "1.5", "+", "+-1"] {
            assert!(matches!(slots(bad, 2), Err(SlotsError::Bad(_))), "{bad}");
        }
    }
}
