//! What a trainer learns from the feedback the other gateways on its store record: with several
//! gateways behind a load balancer, each sees a share of the traffic, and the trainer whose
//! gateway holds the lease ([`super::lease`]) must see all of it to trigger on it, as the
//! others must to show and watch it. Every `database.sync_interval_ms` the trainer reads the
//! rows other gateway processes recorded since it last looked and takes them into its window
//! as it takes its own gateway's (without their arguments, which are never stored, and without
//! counting them in its live experiments, which only its own gateway's sessions join).
//!
//! One gateway's recorder writes one batch after another, so each origin's rows are committed
//! in the order of their ids; rows of different origins are not. A read goes back to the
//! highest id known `LAG` (10 s) before and leaves out, for each origin, what was already
//! taken: a row whose insert took longer than that to commit is missed.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::stats::{last_version, session_key, version_of, Seen};
use super::Trainer;
use crate::store;
use crate::store::feedback::{self, Recorded, AUTOMATIC};

/// How long a row another gateway inserted may take to commit and still be read.
const LAG: Duration = Duration::from_secs(10);
/// Rows read at most per look; the rest are read at the next.
const MAX_ROWS: i64 = 10_000;

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
}

impl Others {
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
        self.others = Some(Others {
            me,
            every,
            floor: 0,
            taken: HashMap::new(),
            looks: VecDeque::new(),
            reading: false,
        });
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
        let read = store::blocking(&self.deps.pool, move |conn| {
            let since_ms = crate::connector::now_ms() - window.as_millis() as i64;
            feedback::recorded_by_others(conn, &me, (floor, &taken), since_ms, MAX_ROWS)
        });
        ctx.spawn(read.into_actor(self).map(|read, act, _| {
            let Some(others) = act.others.as_mut() else {
                return;
            };
            others.reading = false;
            match read {
                Ok(rows) => {
                    let new = others.take(rows, Instant::now());
                    act.take_in_others(new);
                }
                Err(err) => log::warn!("the other gateways' feedback was not read: {err}"),
            }
        }));
    }

    /// Takes rows other gateways recorded into the window, each at the time it was made.
    fn take_in_others(&mut self, rows: Vec<Recorded>) {
        let (now_ms, now) = (crate::connector::now_ms(), Instant::now());
        for Recorded { signal: row, .. } in rows {
            let ago = Duration::from_millis(now_ms.saturating_sub(row.created_at_ms).max(0) as u64);
            let Some(at) = now.checked_sub(ago) else {
                continue;
            };
            let key = (row.target_kind, row.target);
            let session = session_key(row.session_id.as_deref());
            let automatic = row.source == AUTOMATIC;
            let version = version_of(row.version, automatic, session, |session| {
                last_version(self.seen.get(&key), session)
            });
            self.deps
                .metrics
                .feedback_from_others
                .with_label_values(&[key.0.as_str()])
                .inc();
            let seen = Seen {
                at,
                signal: row.signal,
                rating: row.rating,
                version,
                session,
            };
            self.note(key, seen, row.suggestion);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        Others {
            me: "me".into(),
            every: Duration::from_secs(1),
            floor: 0,
            taken: HashMap::new(),
            looks: VecDeque::new(),
            reading: false,
        }
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
