//! `-j`: how many jobs run at once, as GNU parallel reads it.

/// A `-j` value that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad -j `{0}`: use a number (4), a share of the cores (50%), or 0 (as many as possible)")]
pub struct SlotsError(pub String);

/// The job slots `spec` asks for on a machine of `cores`: `N`, `N%` of the cores (at least
/// one), or `0` for as many as possible (256 here, as GNU parallel caps them by the file
/// descriptors it has).
///
/// ```
/// assert_eq!(conlab_run::slots("4", 2), Ok(4));
/// assert_eq!(conlab_run::slots("50%", 4), Ok(2));
/// assert!(conlab_run::slots("four", 2).is_err());
/// ```
pub fn slots(spec: &str, cores: usize) -> Result<usize, SlotsError> {
    let bad = || SlotsError(spec.to_string());
    if let Some(p) = spec.strip_suffix('%') {
        let p: f64 = p.parse().map_err(|_| bad())?;
        if !(p.is_finite() && p >= 0.0) {
            return Err(bad());
        }
        return Ok(((cores as f64 * p / 100.0).ceil() as usize).max(1));
    }
    match spec.parse::<usize>().map_err(|_| bad())? {
        0 => Ok(256),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_take_gnu_parallels_forms() {
        assert_eq!(slots("3", 2), Ok(3));
        assert_eq!(slots("0", 2), Ok(256));
        assert_eq!(slots("100%", 2), Ok(2));
        assert_eq!(slots("1%", 2), Ok(1));
        for bad in ["many", "-5%", "nan%", ""] {
            assert!(slots(bad, 2).is_err(), "{bad}");
        }
    }
}
