//! The lecture's prime workloads, algorithm for algorithm.
//!
//! - [`sum_primes`] is `find_rand` from the threading example: test every `ix` in `2..=n` with
//!   the 6k±1 [`is_prime_6k`] and add up the primes. For 400000, 500000 and 600000 the lecture
//!   prints 6458901531, 9914236195 and 14071826345.
//! - [`is_prime_odd`] is `is_prime` from the ProcessPoolExecutor example (`pr.py`): reject
//!   evens, then trial-divide by every odd number up to the square root.

// `n % i == 0`, as the lecture writes it, rather than `is_multiple_of`: the same algorithm
// in both languages is the point of the comparison.
#![allow(clippy::manual_is_multiple_of)]

use conlab_exec::{RemoteTask, Task, gil};
use serde::{Deserialize, Serialize};

/// The lecture's 6k±1 trial division.
pub fn is_prime_6k(num: u64) -> bool {
    if num <= 1 {
        return false;
    }
    if num <= 3 {
        return true;
    }
    if num % 2 == 0 || num % 3 == 0 {
        return false;
    }
    let mut i: u64 = 5;
    while i * i <= num {
        if num % i == 0 || num % (i + 2) == 0 {
            return false;
        }
        i += 6;
    }
    true
}

/// The sum of the primes `<= n`, by testing each number in turn (the lecture's `find_rand`).
///
/// ```
/// assert_eq!(conlab_work::sum_primes(400_000), 6_458_901_531);
/// ```
pub fn sum_primes(n: u64) -> u64 {
    let mut sum = 0;
    let mut ix = 2;
    while ix <= n {
        if is_prime_6k(ix) {
            sum += ix;
        }
        // Where CPython would check its eval breaker: every few microseconds of work.
        if ix & 1023 == 0 {
            gil::checkpoint();
        }
        ix += 1;
    }
    sum
}

/// `pr.py`'s `is_prime`: odd trial division up to `floor(sqrt(n))`.
///
/// ```
/// assert!(conlab_work::is_prime_odd(112_272_535_095_293));
/// assert!(!conlab_work::is_prime_odd(1_099_726_899_285_419));
/// ```
pub fn is_prime_odd(n: u64) -> bool {
    if n % 2 == 0 {
        return n == 2;
    }
    if n < 3 {
        return false;
    }
    let sqrt_n = n.isqrt();
    let mut i = 3;
    while i <= sqrt_n {
        if n % i == 0 {
            return false;
        }
        if i & 4095 == 3 {
            gil::checkpoint();
        }
        i += 2;
    }
    true
}

/// Task: the sum of the primes `<= n` ([`sum_primes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Primes(pub u64);

impl Task for Primes {
    type Output = u64;
    fn run(self) -> u64 {
        sum_primes(self.0)
    }
}

impl RemoteTask for Primes {
    const NAME: &'static str = "conlab.primes";
}

/// Task: whether `n` is prime ([`is_prime_odd`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsPrime(pub u64);

impl Task for IsPrime {
    type Output = bool;
    fn run(self) -> bool {
        is_prime_odd(self.0)
    }
}

impl RemoteTask for IsPrime {
    const NAME: &'static str = "conlab.is-prime";
}

/// The lecture's `PRIMES` list (ProcessPoolExecutor example); the lecture's output is
/// prime, prime, prime, prime, prime, not prime.
pub const LECTURE_PRIMES: [u64; 6] = [
    112_272_535_095_293,
    112_582_705_942_171,
    112_272_535_095_293,
    115_280_095_190_773,
    115_797_848_077_099,
    1_099_726_899_285_419,
];

/// The inputs of the lecture's threaded prime sums.
pub const LECTURE_SUMS: [u64; 3] = [400_000, 500_000, 600_000];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prime_sums_match_the_lecture() {
        let sums: Vec<u64> = LECTURE_SUMS.iter().map(|&n| sum_primes(n)).collect();
        assert_eq!(sums, [6_458_901_531, 9_914_236_195, 14_071_826_345]);
    }

    #[test]
    fn the_lecture_prime_list_gives_five_primes_then_not() {
        let verdicts: Vec<bool> = LECTURE_PRIMES.iter().map(|&n| is_prime_odd(n)).collect();
        assert_eq!(verdicts, [true, true, true, true, true, false]);
    }

    #[test]
    fn both_tests_agree_on_small_numbers() {
        for n in 0..10_000 {
            assert_eq!(is_prime_6k(n), is_prime_odd(n), "n = {n}");
        }
    }
}
