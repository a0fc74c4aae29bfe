//! The synchronisation primitives the hand-written parts use, swapped for loom's under
//! `--cfg conlab_loom` so that the model checker explores every interleaving of them.

#[cfg(conlab_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(conlab_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(conlab_loom)]
pub(crate) use loom::thread;

#[cfg(not(conlab_loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(not(conlab_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(conlab_loom))]
pub(crate) use std::thread;
