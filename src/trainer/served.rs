//! The versions served in place of the backends' own texts: each target's production version,
//! loaded from the store at start-up and after every deploy or rollback, read lock-free by
//! `tools/list` and `prompts/get`.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::store::prompts;
use crate::store::Pool;

/// A served version: its number and text.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// The version number.
    pub version: i64,
    /// The text.
    pub text: String,
}

/// Production versions by (kind, target).
#[derive(Default)]
pub struct ServedVersions {
    inner: ArcSwap<HashMap<(String, String), Served>>,
}

impl ServedVersions {
    /// The production version of a target, if one was deployed.
    pub fn get(&self, kind: &str, target: &str) -> Option<Served> {
        self.inner
            .load()
            .get(&(kind.to_string(), target.to_string()))
            .cloned()
    }

    /// Whether any target has a deployed version (so lists need no rewriting otherwise).
    pub fn is_empty(&self) -> bool {
        self.inner.load().is_empty()
    }

    /// Reloads every production version from the store (on a blocking thread's time).
    pub fn reload(&self, pool: &Pool) -> Result<(), String> {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        let rows = prompts::production(&mut conn).map_err(|e| e.to_string())?;
        let map = rows
            .into_iter()
            .map(|v| {
                let served = Served {
                    version: v.version,
                    text: v.text,
                };
                ((v.target_kind, v.target), served)
            })
            .collect();
        self.inner.store(Arc::new(map));
        Ok(())
    }
}
