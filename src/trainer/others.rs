//! What a trainer learns from the feedback the other gateways on its store record: with several
//! gateways behind a load balancer, each sees a share of the traffic, and the trainer whose
//! gateway holds the lease ([`super::lease`]) must see all of it to trigger on it, as the
//! others must to show and watch it. Every `database.sync_interval_ms` the trainer reads the
//! rows other gateway processes recorded since it last looked and takes them into its window
//! as it takes its own gateway's (without their arguments, which are never stored), and into
//! its live experiments: the sessions that joined an arm elsewhere, and their outcomes. It also
//! serves the live experiments other gateways started, stops serving those they concluded, and
//! watches the versions they deployed.
//!
//! One gateway's recorder writes one batch after another, so each origin's rows are committed
//! in the order of their ids; rows of different origins are not. A read goes back to the
//! highest id known `LAG` (10 s) before and leaves out, for each origin, what was already
//! taken: a row whose insert took longer than that to commit is missed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{restart, Trainer};
use crate::store;
use crate::store::feedback::{self, Recorded, ASSIGNED};
use crate::store::prompts;

/// How long a row another gateway inserted may take to commit and still be read.
const LAG: Duration = Duration::from_secs(10);
/// Rows read at most per look; the rest are read at the next.
const MAX_ROWS: i64 = 10_000;

/// The live experiments the store holds, and those of them not running here, taken up.
struct StoredExperiments {
    /// Each stored experiment and when it started.
    all: HashSet<((String, String), i64)>,
    /// The stored experiments not running here (or running from another start), their arms
    /// rebuilt from the feedback taken so far.
    new: Vec<restart::Running>,
}

/// What the store holds of live experiments against `running` here; the arms of the others
/// count only the rows this gateway recorded and those the other gateways' `cursor` has
/// taken, so that the looks to come count the rest once.
fn stored_experiments(
    conn: &mut store::AnyConnection,
    running: &HashMap<(String, String), i64>,
    me: &str,
    (floor, taken): (i64, &[(String, i64)]),
) -> diesel::QueryResult<StoredExperiments> {
    let stored = store::experiments::all(conn)?;
    let all = stored
        .iter()
        .map(|s| ((s.target_kind.clone(), s.target.clone()), s.started_at_ms))
        .collect();
    let counted = |row: &feedback::Outcome| not_to_be_taken(row, me, (floor, taken));
    let mut new = Vec::new();
    for experiment in stored {
        let key = (experiment.target_kind.clone(), experiment.target.clone());
        if running.get(&key) == Some(&experiment.started_at_ms) {
            continue;
        }
        if let Some(taken_up) = restart::taken_up(conn, experiment, counted)? {
            new.push(taken_up);
        }
    }
    Ok(StoredExperiments { all, new })
}

/// Deploys read from the store, and when.
type Deploys = (Vec<restart::Deploy>, Instant);

/// The newest move of a label, and, unless it is the one `seen` and that changed more than
/// [`LAG`] ago, the deploys still in production of the moves since `since_ms`, read at `now`:
/// those another gateway made are watched here too ([`Trainer::resume`]), so that a version
/// stays watched when the gateway that deployed it stops.
fn deploys(
    conn: &mut store::AnyConnection,
    (seen, changed): (i64, Option<Instant>),
    (now_ms, now): (i64, Instant),
    since_ms: i64,
) -> diesel::QueryResult<(i64, Option<Deploys>)> {
    let newest = prompts::newest_move(conn)?;
    let settled = changed.is_some_and(|at| now.duration_since(at) >= LAG);
    if newest == seen && settled {
        return Ok((newest, None));
    }
    let moves = prompts::production_moves_since(conn, since_ms)?;
    let at = |ms| restart::instant_at(ms, (now_ms, now));
    Ok((newest, Some((restart::deploys_in(moves, at), now))))
}

/// Whether the looks of a gateway process `me` whose cursor is at `floor` and `taken` will not
/// take `row`: its own, one without an origin, or one already read. What a rebuild of an
/// experiment's arms may count without the looks counting it again.
pub(super) fn not_to_be_taken(
    row: &feedback::Outcome,
    me: &str,
    (floor, taken): (i64, &[(String, i64)]),
) -> bool {
    match &row.origin {
        None => true,
        Some(origin) if origin == me => true,
        Some(origin) => row.id <= floor || taken.iter().any(|(o, id)| o == origin && row.id <= *id),
    }
}

/// Where reading the other gateways' rows has got to.
pub struct Others {
    /// This gateway process, as its rows name it.
    me: String,
    /// How often to look.
    every: Duration,
    /// Rows with an id at or below it are not read again.
    floor: i64,
    /// The highest id taken of each origin above the floor.
    taken: HashMap<String, i64>,
    /// The highest id known after each look, and when: the floor rises to it once it is
    /// [`LAG`] old.
    looks: VecDeque<(Instant, i64)>,
    /// Whether a read is under way.
    reading: bool,
    /// The newest move of a label seen, and when it changed: the deploys of the window are
    /// read again while it changes and [`LAG`] after.
    moves: (i64, Option<Instant>),
}

impl Others {
    /// Nothing read yet by `me`, which looks every `every`.
    fn new(me: String, every: Duration) -> Others {
        Others {
            me,
            every,
            floor: 0,
            taken: HashMap::new(),
            looks: VecDeque::new(),
            reading: false,
            moves: (-1, None),
        }
    }

    /// Goes on from `floor`, having taken each origin's rows up to the id given.
    fn go_on_from(&mut self, (floor, taken): (i64, Vec<(String, i64)>)) {
        self.floor = floor;
        self.taken = taken.into_iter().filter(|(_, id)| *id > floor).collect();
    }

    /// Notes the rows just read (in id order), and which of them are new: each origin's rows
    /// above what was taken of it.
    fn take(&mut self, rows: Vec<Recorded>, now: Instant) -> Vec<Recorded> {
        let known = self.looks.back().map_or(self.floor, |(_, id)| *id);
        let highest = rows.last().map_or(known, |row| row.id.max(known));
        self.looks.push_back((now, highest));
        while let Some((at, id)) = self.looks.front().copied() {
            if now.duration_since(at) < LAG {
                break;
            }
            self.floor = self.floor.max(id);
            self.looks.pop_front();
        }
        let mut new = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(origin) = &row.origin else { continue };
            let taken = self.taken.entry(origin.clone()).or_insert(i64::MIN);
            if row.id > *taken {
                *taken = row.id;
                new.push(row);
            }
        }
        let floor = self.floor;
        self.taken.retain(|_, id| *id > floor);
        new
    }
}

impl Trainer {
    /// Reads, every `every`, the feedback other gateway processes record on the store; this
    /// one's rows name it `me`. Before [`Trainer::restore`], which says where to go on from.
    pub fn follow_others(&mut self, me: String, every: Duration) {
        self.others = Some(Others::new(me, every));
    }

    /// Goes on from where the rows read back at start-up end.
    pub(super) fn others_go_on_from(&mut self, from: (i64, Vec<(String, i64)>)) {
        if let Some(others) = &mut self.others {
            others.go_on_from(from);
        }
    }

    /// Starts looking, from `ctx`'s start on.
    pub(super) fn keep_following(&self, ctx: &mut Context<Self>) {
        let Some(others) = &self.others else {
            return;
        };
        ctx.run_interval(others.every.max(Duration::from_millis(1)), |act, ctx| {
            act.look(ctx)
        });
    }

    /// Reads what the other gateways recorded since the last look, unless a read is under way.
    fn look(&mut self, ctx: &mut Context<Self>) {
        let window = self.window;
        let Some(others) = self.others.as_mut().filter(|o| !o.reading) else {
            return;
        };
        others.reading = true;
        let me = others.me.clone();
        let (floor, taken): (i64, Vec<(String, i64)>) = (
            others.floor,
            others
                .taken
                .iter()
                .map(|(o, id)| (o.clone(), *id))
                .collect(),
        );
        let moves = others.moves;
        let running = self.deps.served.experiments.started();
        let read = store::blocking(&self.deps.pool, move |conn| {
            let now_ms = crate::connector::now_ms();
            let since_ms = now_ms - window.as_millis() as i64;
            let cursor = (floor, taken.as_slice());
            let rows = feedback::recorded_by_others(conn, &me, cursor, since_ms, MAX_ROWS)?;
            let experiments = stored_experiments(conn, &running, &me, cursor)?;
            let deploys = deploys(conn, moves, (now_ms, Instant::now()), since_ms)?;
            Ok((rows, experiments, deploys))
        });
        ctx.spawn(read.into_actor(self).map(|read, act, _| {
            if let Some(others) = act.others.as_mut() {
                others.reading = false;
            }
            match read {
                Ok((rows, experiments, (newest, deploys))) => {
                    // Experiments first: their arms were rebuilt from what was taken before.
                    act.follow_experiments(experiments);
                    if let Some((deploys, read)) = deploys {
                        act.resume(deploys, read);
                    }
                    let Some(others) = act.others.as_mut() else {
                        return;
                    };
                    let now = Instant::now();
                    if newest != others.moves.0 {
                        others.moves = (newest, Some(now));
                    }
                    let new = others.take(rows, now);
                    act.take_in_others(new);
                }
                Err(err) => log::warn!("the other gateways' feedback was not read: {err}"),
            }
        }));
    }

    /// Serves the live experiments another gateway started, and stops serving those another
    /// concluded (no longer stored, unless they started too recently to be stored yet). Every
    /// gateway serves an experiment and counts every gateway's feedback on it; the first whose
    /// conclusion takes it out of the store concludes it ([`super::live::conclude`]).
    fn follow_experiments(&mut self, stored: StoredExperiments) {
        let live = &self.deps.served.experiments;
        let running = live.started();
        let now_ms = crate::connector::now_ms();
        for (key, started_at_ms) in &running {
            let recent = now_ms - started_at_ms < LAG.as_millis() as i64;
            if !recent && !stored.all.contains(&(key.clone(), *started_at_ms)) {
                log::info!(
                    "the live experiment of {} `{}` ended on another gateway",
                    key.0,
                    key.1
                );
                live.end(&key.0, &key.1);
            }
        }
        self.concluded.retain(|ended| stored.all.contains(ended));
        for (((kind, target), started_at_ms), arms, canary) in stored.new {
            let key = (kind, target);
            let concluded = self.concluded.contains(&(key.clone(), started_at_ms));
            if !concluded && running.get(&key) != Some(&started_at_ms) {
                log::info!(
                    "serving the live experiment of {} `{}` another gateway started",
                    key.0,
                    key.1
                );
                live.resume((&key.0, &key.1, started_at_ms), arms, canary);
            }
        }
    }

    /// Takes rows other gateways recorded into the window, each at the time it was made, and
    /// into the live experiments: a session that joined an arm, and each outcome about an
    /// arm's version.
    fn take_in_others(&mut self, rows: Vec<Recorded>) {
        let (now_ms, now) = (crate::connector::now_ms(), Instant::now());
        for Recorded { signal: row, .. } in rows {
            self.deps
                .metrics
                .feedback_from_others
                .with_label_values(&[row.target_kind.as_str()])
                .inc();
            if row.signal == ASSIGNED {
                if let (Some(session), Some(version)) = (&row.session_id, row.version) {
                    let experiments = &self.deps.served.experiments;
                    experiments.joined_elsewhere(&row.target_kind, &row.target, session, version);
                }
                continue;
            }
            if let Some(at) = restart::instant_at(row.created_at_ms, (now_ms, now)) {
                self.take_in(row, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::feedback::AUTOMATIC;

    fn row(id: i64, origin: &str) -> Recorded {
        Recorded {
            id,
            origin: Some(origin.into()),
            signal: feedback::Signal {
                target_kind: "tool".into(),
                target: "t".into(),
                version: None,
                session_id: None,
                signal: "success".into(),
                rating: None,
                suggestion: None,
                source: AUTOMATIC.into(),
                created_at_ms: 0,
            },
        }
    }

    fn others() -> Others {
        Others::new("me".into(), Duration::from_secs(1))
    }

    fn ids(rows: &[Recorded]) -> Vec<i64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_row_read_again_is_taken_once_and_one_committed_late_is_still_taken() {
        let mut others = others();
        let start = Instant::now();

        let first = others.take(vec![row(1, "a"), row(3, "b")], start);
        // Row 2 of `a` committed after row 3 of `b` was read; the next look reads both again.
        let second = others.take(vec![row(2, "c"), row(3, "b"), row(4, "a")], start);

        assert_eq!(ids(&first), [1, 3]);
        assert_eq!(ids(&second), [2, 4]);
        assert_eq!(others.floor, 0, "the floor waits out the lag");
    }

    #[test]
    fn the_floor_rises_to_what_was_known_a_lag_ago_and_forgets_what_it_passed() {
        let mut others = others();
        let start = Instant::now();
        others.take(vec![row(5, "a"), row(7, "b")], start);
        others.take(vec![row(9, "a")], start + LAG / 2);

        let late = others.take(vec![row(8, "b"), row(9, "a")], start + LAG);

        assert_eq!(others.floor, 7);
        assert_eq!(ids(&late), [8]);
        assert_eq!(
            others.taken,
            HashMap::from([("a".to_string(), 9), ("b".to_string(), 8)])
        );
    }

    #[test]
    fn where_start_up_left_off_is_not_read_again() {
        let mut others = others();
        others.go_on_from((10, vec![("a".into(), 12), ("b".into(), 4)]));

        let new = others.take(
            vec![row(11, "b"), row(12, "a"), row(13, "a")],
            Instant::now(),
        );

        assert_eq!(ids(&new), [11, 13]);
    }
}
