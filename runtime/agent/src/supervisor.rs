//! The supervisor's decision core: from what a trial run did, confirm or roll back,
//! and the report the agent sends to the fleet server. Engine-independent.
//!
//! The agent drives a trial like this: [`crate::SlotManager::start_trial`], load and
//! instantiate the trial payload on its engine, call `init`, `health-check`, then feed
//! it events; after each outcome it tells the [`Supervisor`], which answers with a
//! [`Decision`]. Once the decision is [`Decision::Confirm`] or
//! [`Decision::RollBack`], [`Supervisor::settle`] applies it to the slots and returns
//! the [`Report`].
//!
//! The rules, in order: the first fatal error (trap, fuel, memory, stack, ABI), the
//! first failed load, `init` or health check, and (by default) the first event the
//! component answers with an error, roll back. Confirmation needs a passed health
//! check and then [`TrialPolicy::events_required`] good events, or a passed health
//! check when the caller's deadline for events runs out (a quiet sensor is no fault).

use alloc::string::String;
use core::fmt;

use embedded_storage::nor_flash::NorFlash;
use tern_core::Error;
use tern_core::bundle::Version;
use tern_core::protocol;

use crate::error::AgentError;
use crate::slots::SlotManager;

/// A component as reports name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentId {
    /// Component name.
    pub name: String,
    /// Component version.
    pub version: Version,
    /// Anti-rollback counter.
    pub security_counter: u64,
    /// SHA-256 of the whole bundle: its id on the fleet server.
    pub bundle_sha256: [u8; 32],
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (counter {})",
            self.name, self.version, self.security_counter
        )
    }
}

/// Why a trial was rolled back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollbackReason {
    /// The engine would not load or instantiate it (invalid wasm, an import outside
    /// the grant, a missing export).
    LoadFailed(Error),
    /// `init` answered with an error.
    InitFailed(String),
    /// `health-check` answered with an error.
    HealthCheckFailed(String),
    /// An event was answered with an error while [`TrialPolicy::handler_errors_fail`].
    EventFailed {
        /// Which event (0 = the first of the trial).
        index: u32,
        /// The component's answer.
        message: String,
    },
    /// A call hit a fatal error (trap, fuel, memory, stack, ABI).
    Fault {
        /// `init`, `health-check` or `on-event`.
        during: &'static str,
        /// The engine's error.
        error: Error,
    },
    /// The health check never passed before the deadline.
    NoHealthCheck,
    /// The device restarted during the trial more often than the board takes as
    /// inconclusive (`trial_restarts`).
    RestartedDuringTrial {
        /// Restarts during this bundle's trials.
        restarts: u8,
    },
    /// Someone asked for it (operator, OTA API).
    Requested,
}

impl fmt::Display for RollbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollbackReason::LoadFailed(e) => write!(f, "load failed: {e}"),
            RollbackReason::InitFailed(m) => write!(f, "init failed: {m}"),
            RollbackReason::HealthCheckFailed(m) => write!(f, "health check failed: {m}"),
            RollbackReason::EventFailed { index, message } => {
                write!(f, "event {index} answered with an error: {message}")
            }
            RollbackReason::Fault { during, error } => write!(f, "{during}: {error}"),
            RollbackReason::NoHealthCheck => {
                f.write_str("the health check did not pass before the trial deadline")
            }
            RollbackReason::RestartedDuringTrial { restarts } => write!(
                f,
                "the device restarted during the trial {restarts} time(s) before it was confirmed"
            ),
            RollbackReason::Requested => f.write_str("rollback requested"),
        }
    }
}

/// What the agent tells the fleet server about an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// The bundle was verified and stored; its trial run comes next.
    Installed {
        /// The component.
        component: ComponentId,
    },
    /// The trial passed: the component is active and its counter persisted.
    Confirmed {
        /// The component.
        component: ComponentId,
    },
    /// The trial failed: the previous component runs again.
    RolledBack {
        /// The component, if its bundle could still be read.
        component: Option<ComponentId>,
        /// Why.
        reason: RollbackReason,
    },
    /// The bundle was refused or failed verification; nothing changed.
    Rejected {
        /// Why.
        reason: AgentError,
    },
}

impl Report {
    /// The report as the device protocol carries it. `bundle_sha256` names the bundle
    /// when the report itself does not (a refused download, or a rolled-back trial
    /// whose bundle could no longer be read); reasons are cut to
    /// [`protocol::MAX_REASON_LEN`] bytes.
    pub fn to_protocol(&self, bundle_sha256: [u8; 32]) -> protocol::Report {
        match self {
            Report::Installed { component } => protocol::Report::Installed {
                bundle_sha256: component.bundle_sha256,
            },
            Report::Confirmed { component } => protocol::Report::Confirmed {
                bundle_sha256: component.bundle_sha256,
            },
            Report::RolledBack { component, reason } => protocol::Report::RolledBack {
                bundle_sha256: component
                    .as_ref()
                    .map_or(bundle_sha256, |c| c.bundle_sha256),
                reason: reason_text(reason),
            },
            Report::Rejected { reason } => protocol::Report::Rejected {
                bundle_sha256,
                reason: reason_text(reason),
            },
        }
    }
}

/// `reason` as text of at most [`protocol::MAX_REASON_LEN`] bytes, cut at a character
/// boundary.
fn reason_text(reason: &dyn fmt::Display) -> String {
    let mut s = alloc::format!("{reason}");
    if s.len() > protocol::MAX_REASON_LEN {
        let mut end = protocol::MAX_REASON_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Installed { component } => write!(f, "installed {component}"),
            Report::Confirmed { component } => write!(f, "confirmed {component}"),
            Report::RolledBack {
                component: Some(c),
                reason,
            } => write!(f, "rolled back {c}: {reason}"),
            Report::RolledBack {
                component: None,
                reason,
            } => write!(f, "rolled back: {reason}"),
            Report::Rejected { reason } => write!(f, "rejected: {reason}"),
        }
    }
}

/// How much a trial must show before it is confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrialPolicy {
    /// Events that must be handled without error after the health check passes.
    pub events_required: u32,
    /// Whether an event answered with `Err(message)` fails the trial. The component
    /// chose that answer, so it is no fault of the runtime; but a new version that
    /// refuses events the old one handled is the regression a trial exists to catch.
    pub handler_errors_fail: bool,
}

impl Default for TrialPolicy {
    fn default() -> Self {
        TrialPolicy {
            events_required: 3,
            handler_errors_fail: true,
        }
    }
}

/// Where a trial stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep running it and report more outcomes.
    Pending,
    /// Confirm it.
    Confirm,
    /// Roll it back.
    RollBack(RollbackReason),
}

/// Decides one trial run. Once decided, later outcomes change nothing.
#[derive(Clone, Debug)]
pub struct Supervisor {
    policy: TrialPolicy,
    component: ComponentId,
    health_passed: bool,
    good_events: u32,
    events: u32,
    decision: Decision,
}

impl Supervisor {
    /// Starts supervising the trial of `component`.
    pub fn new(component: ComponentId, policy: TrialPolicy) -> Self {
        Supervisor {
            policy,
            component,
            health_passed: false,
            good_events: 0,
            events: 0,
            decision: Decision::Pending,
        }
    }

    /// The current decision.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The component on trial.
    pub fn component(&self) -> &ComponentId {
        &self.component
    }

    /// The engine's load and instantiate result.
    pub fn loaded(&mut self, result: Result<(), Error>) -> &Decision {
        if let Err(e) = result {
            self.fail(RollbackReason::LoadFailed(e));
        }
        &self.decision
    }

    /// The result of `init(config)`.
    pub fn init(&mut self, result: Result<Result<(), String>, Error>) -> &Decision {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(m)) => self.fail(RollbackReason::InitFailed(m)),
            Err(error) => self.fail(RollbackReason::Fault {
                during: "init",
                error,
            }),
        }
        &self.decision
    }

    /// The result of `health-check()`.
    pub fn health_check(&mut self, result: Result<Result<(), String>, Error>) -> &Decision {
        match result {
            Ok(Ok(())) => {
                self.health_passed = true;
                self.maybe_confirm();
            }
            Ok(Err(m)) => self.fail(RollbackReason::HealthCheckFailed(m)),
            Err(error) => self.fail(RollbackReason::Fault {
                during: "health-check",
                error,
            }),
        }
        &self.decision
    }

    /// The result of one `on-event(event)` call; `T` is whatever the handler returned
    /// (its outputs are not judged here).
    pub fn event<T>(&mut self, result: &Result<Result<T, String>, Error>) -> &Decision {
        let index = self.events;
        self.events = self.events.saturating_add(1);
        match result {
            Ok(Ok(_)) => {
                if self.health_passed {
                    self.good_events = self.good_events.saturating_add(1);
                }
                self.maybe_confirm();
            }
            Ok(Err(message)) if self.policy.handler_errors_fail => {
                self.fail(RollbackReason::EventFailed {
                    index,
                    message: message.clone(),
                });
            }
            Ok(Err(_)) => {}
            Err(error) => self.fail(RollbackReason::Fault {
                during: "on-event",
                error: error.clone(),
            }),
        }
        &self.decision
    }

    /// The caller's deadline for the trial passed: confirm if the health check
    /// passed and nothing failed (too few events is no fault), else roll back.
    pub fn deadline_passed(&mut self) -> &Decision {
        if self.decision == Decision::Pending {
            self.decision = if self.health_passed {
                Decision::Confirm
            } else {
                Decision::RollBack(RollbackReason::NoHealthCheck)
            };
        }
        &self.decision
    }

    /// The report for the current decision (`None` while pending).
    pub fn report(&self) -> Option<Report> {
        match &self.decision {
            Decision::Pending => None,
            Decision::Confirm => Some(Report::Confirmed {
                component: self.component.clone(),
            }),
            Decision::RollBack(reason) => Some(Report::RolledBack {
                component: Some(self.component.clone()),
                reason: reason.clone(),
            }),
        }
    }

    /// Applies the decision to the slots (confirm or reject the trial) and returns the
    /// report; `Ok(None)` while the decision is pending.
    pub fn settle<F: NorFlash>(
        &self,
        slots: &mut SlotManager<F>,
    ) -> Result<Option<Report>, AgentError> {
        match &self.decision {
            Decision::Pending => return Ok(None),
            Decision::Confirm => {
                slots.confirm()?;
            }
            Decision::RollBack(_) => {
                slots.reject()?;
            }
        }
        Ok(self.report())
    }

    fn fail(&mut self, reason: RollbackReason) {
        if self.decision == Decision::Pending {
            self.decision = Decision::RollBack(reason);
        }
    }

    fn maybe_confirm(&mut self) {
        if self.decision == Decision::Pending
            && self.health_passed
            && self.good_events >= self.policy.events_required
        {
            self.decision = Decision::Confirm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn id() -> ComponentId {
        ComponentId {
            name: "smoother".into(),
            version: Version {
                major: 1,
                minor: 2,
                patch: 3,
            },
            security_counter: 5,
            bundle_sha256: [0xab; 32],
        }
    }

    fn sup(events_required: u32) -> Supervisor {
        Supervisor::new(
            id(),
            TrialPolicy {
                events_required,
                ..TrialPolicy::default()
            },
        )
    }

    const OK: Result<Result<(), String>, Error> = Ok(Ok(()));

    #[test]
    fn health_then_enough_good_events_confirms() {
        let mut s = sup(2);
        assert_eq!(s.loaded(Ok(())), &Decision::Pending);
        assert_eq!(s.init(OK), &Decision::Pending);
        assert_eq!(s.health_check(OK), &Decision::Pending);
        assert_eq!(s.event(&OK), &Decision::Pending);
        assert_eq!(s.event(&OK), &Decision::Confirm);
        assert_eq!(s.report(), Some(Report::Confirmed { component: id() }));
    }

    #[test]
    fn events_before_the_health_check_do_not_count() {
        let mut s = sup(1);
        s.event(&OK);
        assert_eq!(s.decision(), &Decision::Pending);
        assert_eq!(s.health_check(OK), &Decision::Pending);
        assert_eq!(s.event(&OK), &Decision::Confirm);
    }

    #[test]
    fn zero_events_required_confirms_on_health() {
        assert_eq!(sup(0).health_check(OK), &Decision::Confirm);
    }

    #[test]
    fn every_failure_rolls_back_with_its_reason() {
        let mut s = sup(3);
        let e = Error::ImportNotGranted {
            interface: tern_core::Interface::Gpio,
        };
        assert_eq!(
            s.loaded(Err(e.clone())),
            &Decision::RollBack(RollbackReason::LoadFailed(e))
        );

        let mut s = sup(3);
        assert_eq!(
            s.init(Ok(Err("bad config".into()))),
            &Decision::RollBack(RollbackReason::InitFailed("bad config".into()))
        );

        let mut s = sup(3);
        assert_eq!(
            s.health_check(Ok(Err("sensor missing".into()))),
            &Decision::RollBack(RollbackReason::HealthCheckFailed("sensor missing".into()))
        );

        let mut s = sup(3);
        s.health_check(OK);
        s.event(&OK);
        let fuel = Error::FuelExhausted { budget: 1000 };
        let r: Result<Result<(), String>, Error> = Err(fuel.clone());
        assert_eq!(
            s.event(&r),
            &Decision::RollBack(RollbackReason::Fault {
                during: "on-event",
                error: fuel
            })
        );

        let mut s = sup(3);
        s.health_check(OK);
        let trap = Error::Trap("unreachable".into());
        assert_eq!(
            s.health_check(Err(trap.clone())),
            &Decision::RollBack(RollbackReason::Fault {
                during: "health-check",
                error: trap
            })
        );

        let mut s = sup(3);
        s.health_check(OK);
        s.event(&OK);
        let r: Result<Result<(), String>, Error> = Ok(Err("nope".into()));
        assert_eq!(
            s.event(&r),
            &Decision::RollBack(RollbackReason::EventFailed {
                index: 1,
                message: "nope".into()
            })
        );
    }

    #[test]
    fn handler_errors_can_be_tolerated() {
        let mut s = Supervisor::new(
            id(),
            TrialPolicy {
                events_required: 1,
                handler_errors_fail: false,
            },
        );
        s.health_check(OK);
        let r: Result<Result<(), String>, Error> = Ok(Err("malformed reading".into()));
        assert_eq!(s.event(&r), &Decision::Pending);
        assert_eq!(s.event(&OK), &Decision::Confirm);
    }

    #[test]
    fn the_first_decision_sticks() {
        let mut s = sup(0);
        s.health_check(OK);
        assert_eq!(
            s.event(&Err::<Result<(), String>, _>(Error::StackOverflow)),
            &Decision::Confirm
        );
        let mut s = sup(1);
        s.health_check(Ok(Err("x".into())));
        assert!(matches!(s.health_check(OK), Decision::RollBack(_)));
        assert!(matches!(s.deadline_passed(), Decision::RollBack(_)));
    }

    #[test]
    fn the_deadline_confirms_a_healthy_quiet_component_only() {
        let mut s = sup(10);
        s.health_check(OK);
        s.event(&OK);
        assert_eq!(s.deadline_passed(), &Decision::Confirm);
        let mut s = sup(10);
        assert_eq!(
            s.deadline_passed(),
            &Decision::RollBack(RollbackReason::NoHealthCheck)
        );
        assert_eq!(
            s.report().map(|r| r.to_string()),
            Some("rolled back smoother 1.2.3 (counter 5): the health check did not pass before the trial deadline".into())
        );
    }

    #[test]
    fn reports_become_protocol_reports_with_bounded_reasons() {
        let confirmed = Report::Confirmed { component: id() };
        assert_eq!(
            confirmed.to_protocol([0; 32]),
            protocol::Report::Confirmed {
                bundle_sha256: [0xab; 32]
            }
        );
        let long = Report::RolledBack {
            component: None,
            reason: RollbackReason::HealthCheckFailed("é".repeat(200)),
        };
        let wire = long.to_protocol([1; 32]);
        assert_eq!(wire.bundle_sha256(), Some(&[1; 32]));
        let reason = wire.reason().unwrap_or_default();
        assert!(reason.len() <= protocol::MAX_REASON_LEN && reason.len() > 200);
        let rejected = Report::Rejected {
            reason: AgentError::NothingStaged,
        };
        assert_eq!(rejected.to_protocol([2; 32]).outcome(), "rejected");
    }
}
