//! The scenarios: how the world starts, how its users and the optimizer behave.

use crate::optimizer::Mix;

/// How tools' descriptions start.
#[derive(Debug, Clone, Copy)]
pub enum Degrade {
    /// The function's name only.
    Name,
    /// The first words of the original.
    Words(usize),
}

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name in the report.
    pub name: &'static str,
    /// What it checks.
    pub about: &'static str,
    /// How descriptions start.
    pub degrade: Degrade,
    /// The optimizer's answers; `None`: no LLM is set.
    pub mix: Option<Mix>,
    /// Share of tool calls a user rates.
    pub rate: f64,
    /// Share of ratings that say the opposite of what happened.
    pub noise: f64,
    /// Share of ratings that carry a hostile suggestion.
    pub hostile: f64,
    /// Chance that the client leaves out a required argument the description does not name.
    pub omit: f64,
    /// Feedback events the trainer gets.
    pub events: usize,
    /// After this many events an operator deploys a bad description of the busiest tool.
    pub regression_at: Option<usize>,
}

/// Mostly good rewrites.
const HONEST: Mix = Mix([0.55, 0.2, 0.15, 0.1]);
/// Mostly harmful or manipulative rewrites.
const POISONED: Mix = Mix([0.2, 0.1, 0.35, 0.35]);

/// Every scenario, in report order.
pub fn all() -> Vec<Scenario> {
    let base = Scenario {
        name: "cold_recovery",
        about: "every description starts as the bare function name; ratings on 10% of calls, 10% of them wrong",
        degrade: Degrade::Name,
        mix: Some(HONEST),
        rate: 0.1,
        noise: 0.1,
        hostile: 0.0,
        omit: 0.1,
        events: 2000,
        regression_at: None,
    };
    vec![
        base.clone(),
        Scenario {
            name: "sparse_noisy_ratings",
            about: "descriptions start as their first three words; ratings on 3% of calls, 30% of them wrong",
            degrade: Degrade::Words(3),
            rate: 0.03,
            noise: 0.3,
            ..base.clone()
        },
        Scenario {
            name: "poisoned_candidates",
            about: "the optimizer's rewrites are 35% harmful and 35% manipulative",
            mix: Some(POISONED),
            ..base.clone()
        },
        Scenario {
            name: "regression_after_deploy",
            about: "after 1,000 events an operator deploys, on one of the ten busiest tools, the other tool's description that harms its backend most on the validation questions",
            regression_at: Some(1000),
            ..base.clone()
        },
        Scenario {
            name: "choosing_among_approaches",
            about: "the client often leaves out undocumented required arguments (40%) besides picking wrong tools",
            omit: 0.4,
            ..base.clone()
        },
        Scenario {
            name: "no_llm",
            about: "no optimizer LLM is set: only few-shot, reinforcement and rule-based hardening can run",
            mix: None,
            omit: 0.4,
            ..base.clone()
        },
        Scenario {
            name: "injection_through_suggestions",
            about: "30% of ratings carry a hostile suggestion; the optimizer obeys any that reaches it",
            hostile: 0.3,
            rate: 0.2,
            ..base
        },
    ]
}
