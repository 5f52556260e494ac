//! What a trainer takes back from the store when it starts, so that a restart loses neither
//! evidence nor money: the signals and suggestions of its window (triggers and live figures read
//! them; a client's rating that names no version is about what its session's signal before it was
//! about, as it was live), when each target's last run started (a run needs evidence newer than
//! that), the targets the live watch rolled back since their last run (a thin description it put
//! back is rewritten again on one use), the versions deployed within the window (watched again,
//! from their deploy), the live experiments that ran (they go on, with the successes and failures
//! their feedback shows), the inputs the LLM wrote for each target, the prompts' texts learnt from
//! their fetches, and the LLM calls of the last 24 hours (the day's budget). Of these, what only
//! the trainer holds (the sessions given to live experiments' arms, the learnt texts) it stores
//! here at each check, and at shutdown when told ([`Flush`]).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::OptionFuture;

use super::arm::Arm;
use super::arms::{read_arms, rebuilt};
use super::job::DAY;
use super::served::Served;
use super::stats::{session_key, version_of, Seen};
use super::{inputs, live, others, Trainer, MAX_SEEN, MAX_SUGGESTIONS};
use crate::store::{
    self, experiments, feedback, prompt_templates, prompts, training_runs, AnyConnection, Pool,
};

/// Stored signals read back at most (the newest).
const MAX_SIGNALS: i64 = 200_000;

/// A target: its kind and name.
type Key = (String, String);

/// A version deployed before a restart: the target, the version, the one it replaced, and when.
pub(super) type Deploy = (Key, i64, i64, Instant);

/// A live experiment that ran before a restart: the target and when it started, its arms and
/// the sessions assigned to them, and its canary share.
pub(super) type Running = ((Key, i64), (Vec<Arm>, HashMap<String, usize>), f64);

/// What the store holds for a starting trainer.
pub struct Restored {
    /// Signals of the window per target, oldest first.
    pub(super) signals: Vec<(Key, Seen)>,
    /// Suggestions of the window per target, oldest first.
    pub(super) suggestions: Vec<(Key, String)>,
    /// When each target's last run started.
    pub(super) last_runs: Vec<(Key, Instant)>,
    /// The targets the live watch rolled back since their last run.
    pub(super) rolled_back: Vec<Key>,
    /// Versions deployed within the window and still in production.
    pub(super) deploys: Vec<Deploy>,
    /// Live experiments that ran.
    pub(super) experiments: Vec<Running>,
    /// When it was read: the signals before it are the stored ones.
    pub(super) at: Instant,
    /// Where reading the other gateways' rows goes on from: the highest id before the
    /// signals were read, and the highest id read of each origin ([`super::others`]).
    pub(super) others: (i64, Vec<(String, i64)>),
    /// The LLM's inputs per target, with what they were asked for.
    pub(super) inputs: inputs::Kept,
    /// Each prompt's text learnt from its fetches, and when it last changed (oldest first).
    pub(super) templates: Vec<(String, String, Vec<Instant>)>,
    /// When each LLM call of the last day was made (as when its run started), oldest first.
    pub(super) llm_calls: Vec<Instant>,
}

/// Reads what a trainer whose window is `window` takes back ([`super::Trainer::restore`]);
/// blocking. A trainer that goes on to read the other gateways' rows (`follows`) counts in its
/// live experiments only the rows read before those it will take ([`super::others`]).
pub fn load(pool: &Pool, window: Duration, follows: bool) -> Result<Restored, String> {
    let now_ms = crate::connector::now_ms();
    let now = Instant::now();
    let at = |ms: i64| instant_at(ms, (now_ms, now));
    let since = |span: Duration| now_ms.saturating_sub(span.as_millis() as i64);
    let err = |e: diesel::result::Error| e.to_string();
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let inputs = inputs::stored(&mut conn)?;

    // Read first: a row committed between the two reads is in both, and each origin's
    // rows read here are not taken again ([`super::others`]).
    let last_id = feedback::last_id(&mut conn).map_err(err)?.unwrap_or(0);
    let rows = feedback::since(&mut conn, since(window), MAX_SIGNALS).map_err(err)?;
    let mut signals = Vec::with_capacity(rows.len());
    let mut taken: HashMap<String, i64> = HashMap::new();
    let mut suggestions = Vec::new();
    // What each session's latest signal about each target was about.
    let mut latest: HashMap<(Key, u64), Option<i64>> = HashMap::new();
    for feedback::Recorded { id, origin, signal } in rows {
        if let Some(origin) = origin {
            let last = taken.entry(origin).or_insert(id);
            *last = (*last).max(id);
        }
        let row = signal;
        if row.signal == feedback::ASSIGNED {
            continue; // counted by the experiments' arms only
        }
        let Some(when) = at(row.created_at_ms) else {
            continue;
        };
        let key = (row.target_kind, row.target);
        if let Some(suggestion) = row.suggestion {
            suggestions.push((key.clone(), suggestion));
        }
        let session = session_key(row.session_id.as_deref());
        let automatic = row.source == feedback::AUTOMATIC;
        let version = version_of(row.version, automatic, session, |session| {
            latest.get(&(key.clone(), session)).copied().flatten()
        });
        if let Some(session) = session {
            latest.insert((key.clone(), session), version);
        }
        let seen = Seen {
            at: when,
            signal: row.signal,
            rating: row.rating,
            version,
            session,
        };
        signals.push((key, seen));
    }
    let (started, watch_rollbacks) = runs_since(&mut conn, since(window)).map_err(err)?;
    let rolled_back = watch_rollbacks
        .into_iter()
        .filter(|(key, at)| started.get(key).is_none_or(|run| run < at))
        .map(|(key, _)| key)
        .collect();
    let last_runs = started
        .into_iter()
        .filter_map(|(key, started)| Some((key, at(started)?)))
        .collect();
    let moves = prompts::production_moves_since(&mut conn, since(window)).map_err(err)?;
    let deploys = deploys_in(moves, at);
    // A row of another gateway committed since the signals were read is taken by a look (this
    // process has recorded none yet).
    let taken: Vec<(String, i64)> = taken.into_iter().collect();
    let cursor = (last_id, taken.as_slice());
    let counted = |row: &feedback::Outcome| !follows || others::not_to_be_taken(row, "", cursor);
    let experiments = running(&mut conn, counted)?;
    let templates = prompt_templates::all(&mut conn)
        .map_err(err)?
        .into_iter()
        .map(|t| {
            let changes = t.changes().into_iter().filter_map(at).collect();
            (t.target, t.template, changes)
        })
        .collect();
    let runs = training_runs::llm_calls_since(&mut conn, since(DAY)).map_err(err)?;
    let llm_calls = runs
        .into_iter()
        .filter_map(|(started, calls)| {
            Some(std::iter::repeat_n(at(started)?, calls.max(0) as usize))
        })
        .flatten()
        .collect();
    Ok(Restored {
        others: (last_id, taken),
        at: now,
        signals,
        suggestions,
        last_runs,
        rolled_back,
        deploys,
        experiments,
        inputs,
        templates,
        llm_calls,
    })
}

/// The deploys among production's `moves` (oldest first) that are still in production: per
/// target, its last move when that was a deploy, timed by `at`.
pub(super) fn deploys_in(
    moves: Vec<prompts::LabelMove>,
    at: impl Fn(i64) -> Option<Instant>,
) -> Vec<Deploy> {
    let mut deploys: Vec<Deploy> = Vec::new();
    for moved in moves {
        let key = (moved.target_kind, moved.target);
        deploys.retain(|(k, ..)| *k != key);
        match (
            prompts::is_deploy(&moved.reason),
            moved.from_version,
            at(moved.at_ms),
        ) {
            (true, Some(previous), Some(when)) if previous != moved.to_version => {
                deploys.push((key, moved.to_version, previous, when))
            }
            _ => {}
        }
    }
    deploys
}

/// The stored live experiments, their arms rebuilt from the feedback since each started that
/// is `counted` ([`rebuilt`]); one that names a version the store lacks cannot go on and is
/// removed.
fn running(
    conn: &mut AnyConnection,
    counted: impl Fn(&feedback::Outcome) -> bool + Copy,
) -> Result<Vec<Running>, String> {
    let err = |e: diesel::result::Error| e.to_string();
    let mut running = Vec::new();
    for stored in experiments::all(conn).map_err(err)? {
        let (kind, target) = (stored.target_kind.clone(), stored.target.clone());
        match taken_up(conn, stored, counted).map_err(err)? {
            Some(experiment) => running.push(experiment),
            None => {
                log::warn!("the stored experiment of {kind} `{target}` names versions the store lacks; it ends");
                experiments::remove(conn, &kind, &target).map_err(err)?;
            }
        }
    }
    Ok(running)
}

/// A stored live experiment, its arms rebuilt from the feedback since it started that
/// `counts` ([`rebuilt`]); none when it names a version the store lacks.
pub(super) fn taken_up(
    conn: &mut AnyConnection,
    stored: experiments::Stored,
    counts: impl Fn(&feedback::Outcome) -> bool,
) -> diesel::QueryResult<Option<Running>> {
    let (kind, target) = (stored.target_kind.as_str(), stored.target.as_str());
    let versions = prompts::versions(conn, kind, target)?;
    let arms: Option<Vec<(Served, u64)>> = read_arms(&stored.arms).and_then(|arms| {
        arms.into_iter()
            .map(|(version, sessions)| {
                let stored = versions.iter().find(|v| v.version == version)?;
                Some((Served::from(stored.clone()), sessions))
            })
            .collect()
    });
    let Some(arms) = arms.filter(|arms| arms.len() > 1) else {
        return Ok(None);
    };
    let mut rows =
        feedback::outcomes_since(conn, (kind, target), stored.started_at_ms, MAX_SIGNALS)?;
    rows.retain(counts);
    let key = (stored.target_kind.clone(), stored.target.clone());
    Ok(Some((
        (key, stored.started_at_ms),
        rebuilt(arms, &rows),
        stored.canary,
    )))
}

impl Trainer {
    /// Takes back what the store kept from before a restart (see [`load`]); what this
    /// trainer has learnt since is newer and stays.
    pub fn restore(&mut self, restored: Restored) {
        let seen = std::mem::take(&mut self.seen);
        self.seen = merged(restored.signals, seen, MAX_SEEN)
            .into_iter()
            .collect();
        let suggestions = std::mem::take(&mut self.suggestions);
        self.suggestions = merged(restored.suggestions, suggestions, MAX_SUGGESTIONS);
        for (key, at) in restored.last_runs {
            self.last_run.entry(key).or_insert(at);
        }
        for key in restored.rolled_back {
            if self
                .last_run
                .get(&key)
                .is_none_or(|run| *run <= restored.at)
            {
                self.rolled_back.insert(key);
            }
        }
        self.resume(restored.deploys, restored.at);
        self.others_go_on_from(restored.others);
        let live = &self.deps.served.experiments;
        for (((kind, target), started_at_ms), arms, canary) in restored.experiments {
            if live.arms(&kind, &target).is_none() {
                live.resume((&kind, &target, started_at_ms), arms, canary);
            }
        }
        for (key, inputs) in restored.inputs {
            self.inputs.entry(key).or_insert(inputs);
        }
        for (target, template, changes) in restored.templates {
            self.text_changes
                .entry(target.clone())
                .or_insert_with(|| changes.into());
            self.templates.entry(target).or_insert(template);
        }
        let mut calls: Vec<Instant> = self.llm_calls.drain(..).collect();
        calls.extend(restored.llm_calls);
        calls.sort();
        self.llm_calls = calls.into();
    }
}

impl Trainer {
    /// Stores the prompts' texts learnt from their fetches since they were last stored; a
    /// failed write is tried again at the next check.
    pub(super) fn store_templates(&mut self, ctx: &mut Context<Self>) {
        let Some((targets, write)) = self.templates_to_store() else {
            return;
        };
        ctx.spawn(write.into_actor(self).map(|stored, act, _| {
            if let Err(err) = stored {
                log::warn!("storing the prompts' learnt texts failed (tried again at the next check): {err}");
                act.unstored_templates.extend(targets);
            }
        }));
    }

    /// The prompts whose learnt text changed since it was last stored, and the write that
    /// stores them, if any changed; they count as stored.
    fn templates_to_store(
        &mut self,
    ) -> Option<(
        Vec<String>,
        impl Future<Output = Result<(), String>> + 'static,
    )> {
        let now = crate::connector::now_ms();
        let ms = |at: &Instant| now.saturating_sub(at.elapsed().as_millis() as i64);
        let learnt: Vec<(String, String, Vec<i64>)> = self
            .unstored_templates
            .drain()
            .filter_map(|target| {
                let template = self.templates.get(&target)?.clone();
                let changes = self.text_changes.get(&target).into_iter().flatten();
                let changes = changes.map(ms).collect();
                Some((target, template, changes))
            })
            .collect();
        if learnt.is_empty() {
            return None;
        }
        let targets = learnt.iter().map(|(target, ..)| target.clone()).collect();
        let put = move |conn: &mut AnyConnection| {
            for (target, template, changes) in &learnt {
                prompt_templates::put(conn, target, template, changes, now)?;
            }
            Ok(())
        };
        Some((targets, store::blocking(&self.deps.pool, put)))
    }
}

/// Store now what the trainer otherwise stores at its checks: the sessions that joined live
/// experiments and the prompts' learnt texts. Sent at shutdown, so that a restart loses none.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

impl Handler<Flush> for Trainer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        let sessions = live::store_sessions(&self.deps.pool, &self.deps.served);
        let templates = self.templates_to_store().map(|(_, write)| write);
        let lease = self.give_up_lease();
        Box::pin(async move {
            OptionFuture::from(lease).await;
            if let Some(Err(err)) = OptionFuture::from(sessions).await {
                log::warn!("storing the sessions of live experiments failed: {err}");
            }
            if let Some(Err(err)) = OptionFuture::from(templates).await {
                log::warn!("storing the prompts' learnt texts failed: {err}");
            }
        })
    }
}

/// When each target's last run started, and when the watch last rolled it back, in
/// milliseconds since the epoch, over the runs started since `since_ms`. A target's last run is
/// the last a trigger or an operator started; a live experiment's conclusion, a deploy check and
/// the watch's rollbacks (kept apart) are not runs of it.
fn runs_since(
    conn: &mut AnyConnection,
    since_ms: i64,
) -> diesel::QueryResult<(HashMap<Key, i64>, HashMap<Key, i64>)> {
    let mut started: HashMap<Key, i64> = HashMap::new();
    let mut watch_rollbacks: HashMap<Key, i64> = HashMap::new();
    for (kind, target, trigger, last) in training_runs::last_started_by_trigger(conn, since_ms)? {
        let into = match trigger.as_str() {
            "experiment" | "manual_deploy" => continue,
            "live_results" => &mut watch_rollbacks,
            _ => &mut started,
        };
        if let Some(last) = last {
            let at = into.entry((kind, target)).or_insert(last);
            *at = (*at).max(last);
        }
    }
    Ok((started, watch_rollbacks))
}

/// When each target's last run started, by any gateway on the store, within `window`: what a
/// trainer that starts to lead takes up, so that it does not train again what the gateway that
/// led before it just trained.
pub(super) fn last_runs(
    conn: &mut AnyConnection,
    window: Duration,
) -> diesel::QueryResult<Vec<(Key, Instant)>> {
    let now_ms = crate::connector::now_ms();
    let now = Instant::now();
    let since_ms = now_ms.saturating_sub(window.as_millis() as i64);
    let (started, _) = runs_since(conn, since_ms)?;
    Ok(started
        .into_iter()
        .filter_map(|(key, ms)| Some((key, instant_at(ms, (now_ms, now))?)))
        .collect())
}

/// The instant of `ms` (milliseconds since the Unix epoch), when the clock read `now_ms` at
/// `now`; none before the process's clock can tell.
pub(super) fn instant_at(ms: i64, (now_ms, now): (i64, Instant)) -> Option<Instant> {
    let ago = Duration::from_millis(now_ms.saturating_sub(ms).max(0) as u64);
    now.checked_sub(ago)
}

/// Per target, the `older` items (oldest first) followed by the `newer` ones, the newest `cap`
/// of them.
pub(super) fn merged<T>(
    older: Vec<(Key, T)>,
    newer: impl IntoIterator<Item = (Key, VecDeque<T>)>,
    cap: usize,
) -> HashMap<Key, VecDeque<T>> {
    let mut all: HashMap<Key, VecDeque<T>> = HashMap::new();
    for (key, item) in older {
        all.entry(key).or_default().push_back(item);
    }
    for (key, items) in newer {
        all.entry(key).or_default().extend(items);
    }
    for items in all.values_mut() {
        while items.len() > cap {
            items.pop_front();
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_items_keep_their_order_and_the_newest_within_the_cap() {
        let key = |name: &str| ("tool".to_string(), name.to_string());
        let older = vec![(key("a"), 1), (key("a"), 2), (key("b"), 7)];
        let newer = vec![(key("a"), VecDeque::from([3, 4]))];

        let all = merged(older, newer, 3);

        assert_eq!(all[&key("a")], [2, 3, 4]);
        assert_eq!(all[&key("b")], [7]);
    }

    #[test]
    fn the_deploys_still_in_production_are_each_targets_last_move_when_it_deployed() {
        let moved =
            |target: &str, (from, to): (i64, i64), reason: &str, at_ms| prompts::LabelMove {
                id: at_ms,
                target_kind: "tool".into(),
                target: target.into(),
                label: "production".into(),
                from_version: Some(from),
                to_version: to,
                reason: reason.into(),
                at_ms,
            };
        let now = Instant::now();
        let moves = vec![
            moved("a", (1, 2), prompts::BY_API, 1_000),
            moved("a", (2, 1), "rolled back: worse live", 2_000),
            moved("b", (1, 2), prompts::BY_API, 3_000),
            moved("c", (1, 2), prompts::BY_API, 4_000),
            moved("c", (2, 3), prompts::BY_API, 5_000),
            moved("d", (4, 4), prompts::BY_API, 6_000),
        ];

        let deploys = deploys_in(moves, |ms| instant_at(ms, (10_000, now)));

        let found: Vec<_> = deploys
            .iter()
            .map(|(k, v, p, at)| (k.1.as_str(), *v, *p, now - *at))
            .collect();
        assert_eq!(
            found,
            [
                ("b", 2, 1, Duration::from_millis(7_000)),
                ("c", 3, 2, Duration::from_millis(5_000)),
            ]
        );
    }
}
