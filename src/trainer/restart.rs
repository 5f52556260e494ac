//! What a trainer takes back from the store when it starts: the inputs the LLM wrote for each
//! target, and the LLM calls of the last 24 hours, so that a restart neither asks for inputs
//! again nor spends the day's budget of calls twice.

use std::time::{Duration, Instant};

use super::inputs;
use super::job::DAY;
use crate::store::{training_runs, Pool};

/// What the store holds for a starting trainer.
pub struct Restored {
    /// The LLM's inputs per target, with what they were asked for.
    pub(super) inputs: inputs::Kept,
    /// When each LLM call of the last day was made (as when its run started), oldest first.
    pub(super) llm_calls: Vec<Instant>,
}

/// Reads what a starting trainer takes back ([`super::Trainer::restore`]); blocking.
pub fn load(pool: &Pool) -> Result<Restored, String> {
    let inputs = inputs::stored(pool)?;
    let now_ms = crate::connector::now_ms();
    let since = now_ms - DAY.as_millis() as i64;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let runs = training_runs::llm_calls_since(&mut conn, since).map_err(|e| e.to_string())?;
    let now = Instant::now();
    let llm_calls = runs
        .into_iter()
        .filter_map(|(started_ms, calls)| {
            let ago = Duration::from_millis(now_ms.saturating_sub(started_ms).max(0) as u64);
            let at = now.checked_sub(ago)?;
            Some(std::iter::repeat_n(at, calls.max(0) as usize))
        })
        .flatten()
        .collect();
    Ok(Restored { inputs, llm_calls })
}
