//! `MemoryLinesParameter`, the in-memory twin of the lines' SSM parameter
//! (`shared::adapters::ssm::SsmLinesParameter`): each [`put`](MemoryLinesParameter::put) is a
//! new version, as SSM numbers them; reads can be made to fail or hang.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use shared::ports::{LinesDocument, LinesParameter, LinesParameterError, LinesRead};

/// Clones share one parameter, as two clients of one SSM parameter do.
#[derive(Clone, Default)]
pub struct MemoryLinesParameter {
    state: Arc<Mutex<State>>,
    reads: Arc<AtomicUsize>,
}

#[derive(Default)]
struct State {
    document: Option<LinesDocument>,
    failing: bool,
    hang: Option<Duration>,
}

impl MemoryLinesParameter {
    /// A parameter holding `json` as its version 1.
    pub fn holding(json: &str) -> Self {
        let parameter = Self::default();
        parameter.put(json);
        parameter
    }

    /// Writes `json` as the next version (PutParameter with Overwrite); returns it.
    pub fn put(&self, json: &str) -> i64 {
        let mut state = self.lock();
        let version = state.document.as_ref().map_or(1, |d| d.version + 1);
        state.document = Some(LinesDocument { json: json.to_owned(), version });
        version
    }

    /// From now on, every read fails as an unreachable SSM would (until `false`).
    pub fn fail_reads(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// From now on, every read answers only after `delay` (`None`: at once).
    pub fn hang_reads(&self, delay: Option<Duration>) {
        self.lock().hang = delay;
    }

    /// How many reads were asked for.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LinesParameter for MemoryLinesParameter {
    fn read(&self) -> LinesRead<'_> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let (answer, hang) = {
            let state = self.lock();
            let answer = if state.failing {
                Err(LinesParameterError::Unavailable("ThrottlingException: rate exceeded".into()))
            } else {
                state.document.clone().ok_or(LinesParameterError::NotFound)
            };
            (answer, state.hang)
        };
        Box::pin(async move {
            if let Some(delay) = hang {
                tokio::time::sleep(delay).await;
            }
            answer
        })
    }
}
