//! How a reply becomes a task's result: [`Pending`] is a task on its way to a worker (its
//! frame, kept until answered so that it can be re-sent after a crash) and a type-erased
//! [`Completion`] that decodes the reply into the task's handle, or fails it.

use std::sync::Arc;

use super::protocol;
use crate::error::Error;
use crate::handle::Slot;
use crate::pool::BatchResult;
use crate::task::{TaskId, Wire};

/// Completes a task's handle from a worker's reply; type-erased so one queue carries all.
pub(super) trait Completion: Send {
    fn try_start(&self) -> bool;
    fn try_abandon(&self) -> bool;
    fn complete(self: Box<Self>, status: u8, payload: &[u8]);
    fn fail(self: Box<Self>, error: Error);
}

pub(super) struct Single<T>(pub(super) Arc<Slot<T>>);
pub(super) struct Batched<T>(pub(super) Arc<Slot<BatchResult<T>>>);

fn reply_error(task: TaskId, status: u8, payload: &[u8]) -> Error {
    let message = String::from_utf8_lossy(payload).into_owned();
    if status == protocol::PANICKED {
        Error::TaskPanicked { task, message }
    } else {
        Error::Remote { task, message }
    }
}

fn undecodable(task: TaskId, e: postcard::Error) -> Error {
    Error::Remote {
        task,
        message: format!("could not decode the task's output: {e}"),
    }
}

impl<T: Wire> Completion for Single<T> {
    fn try_start(&self) -> bool {
        self.0.try_start()
    }
    fn try_abandon(&self) -> bool {
        self.0.try_cancel()
    }
    fn complete(self: Box<Self>, status: u8, payload: &[u8]) {
        let task = self.0.id();
        let result = if status == protocol::OK {
            postcard::from_bytes(payload).map_err(|e| undecodable(task, e))
        } else {
            Err(reply_error(task, status, payload))
        };
        self.0.complete(result);
    }
    fn fail(self: Box<Self>, error: Error) {
        self.0.complete(Err(error));
    }
}

impl<T: Wire> Completion for Batched<T> {
    fn try_start(&self) -> bool {
        self.0.try_start()
    }
    fn try_abandon(&self) -> bool {
        self.0.try_cancel()
    }
    fn complete(self: Box<Self>, status: u8, payload: &[u8]) {
        let task = self.0.id();
        let result = if status == protocol::OK {
            postcard::from_bytes::<Vec<Result<T, String>>>(payload)
                .map(|results| {
                    results
                        .into_iter()
                        .map(|r| r.map_err(|message| Error::TaskPanicked { task, message }))
                        .collect()
                })
                .map_err(|e| undecodable(task, e))
        } else {
            Err(reply_error(task, status, payload))
        };
        self.0.complete(result);
    }
    fn fail(self: Box<Self>, error: Error) {
        self.0.complete(Err(error));
    }
}

/// A task on its way to a worker: its frame (kept until answered, to resend after a crash)
/// and how to complete its handle.
pub(super) struct Pending {
    pub(super) id: TaskId,
    pub(super) frame: Vec<u8>,
    /// Already claimed (sent once, its worker died before starting it): resend as is.
    pub(super) claimed: bool,
    pub(super) completion: Box<dyn Completion>,
}

impl Pending {
    pub(super) fn new(id: TaskId, frame: Vec<u8>, completion: impl Completion + 'static) -> Self {
        Pending {
            id,
            frame,
            claimed: false,
            completion: Box::new(completion),
        }
    }

    pub(super) fn abandon(self) {
        if self.completion.try_abandon() {
            let task = self.id;
            self.completion.fail(Error::ShutDown { task });
        }
    }
}
