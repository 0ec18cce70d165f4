//! Experiments across model versions on next-best offers: creating, re-weighting and
//! stopping them, following the stored book (a shard node, and start-up), and routing a
//! customer's offers to their arm's version.
//!
//! The book lives in the store and is written by compare-and-set, so two writers (two
//! nodes, or a node and a router) never undo each other; at most one experiment (a canary
//! included) runs at a time. The versions of a running experiment's arms are pinned in
//! the engine: they stay loaded through activations until it stops.

use std::sync::Arc;

use doppel_types::experiment::{self, Allocation, CANARY_NAME};
use doppel_types::{Arm, Experiment, ExperimentBook, ExperimentKind};

use crate::error::{Error, Result};
use crate::node::Node;

/// Writers retried when another write to the book came first.
const CAS_ATTEMPTS: usize = 8;

/// What `CreateExperiment` asks for (validated here).
#[derive(Clone, Debug, Default)]
pub struct NewExperiment {
    /// The experiment's name.
    pub name: String,
    /// Its arms.
    pub arms: Vec<Arm>,
    /// The hash salt ("" means the name).
    pub salt: String,
    /// Share of customers in it (0 means 100).
    pub traffic_percent: u32,
}

/// Which arm answers a customer's offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArmRoute {
    /// The experiment (or "canary").
    pub experiment: String,
    /// The arm's name.
    pub arm: String,
    /// The arm's version.
    pub version: String,
}

/// The experiment this node applies, and serialisation of its changes.
#[derive(Default)]
pub(crate) struct ExperimentState {
    /// The running experiment as last applied.
    running: parking_lot::RwLock<Option<Arc<Experiment>>>,
    /// The book revision last applied.
    revision: parking_lot::Mutex<u64>,
    /// One change (a write, or following the store) at a time.
    change: tokio::sync::Mutex<()>,
}

impl Node {
    /// Creates and starts an experiment; FAILED_PRECONDITION while another runs, or when
    /// an arm's version cannot be activated or loading them all would exceed
    /// `max_loaded_versions`; ALREADY_EXISTS for a name in use.
    pub async fn create_experiment(&self, request: NewExperiment) -> Result<Experiment> {
        let traffic = match request.traffic_percent {
            0 => 100,
            t => t,
        };
        if !experiment::is_valid_name(&request.name) {
            return Err(Error::invalid(
                "name",
                format!(
                    "must be 1..={} bytes of [A-Za-z0-9._-], starting with a letter or digit",
                    experiment::MAX_NAME_LEN
                ),
            ));
        }
        if request.name == CANARY_NAME {
            return Err(Error::invalid(
                "name",
                "`canary` is reserved for canary activations",
            ));
        }
        if request.salt.len() > experiment::MAX_SALT_LEN {
            return Err(Error::invalid(
                "salt",
                format!("at most {} bytes", experiment::MAX_SALT_LEN),
            ));
        }
        experiment::validate_arms(&request.arms, traffic)
            .map_err(|(field, reason)| Error::invalid(field, reason))?;
        let salt = if request.salt.is_empty() {
            request.name.clone()
        } else {
            request.salt.clone()
        };
        let draft = Experiment {
            name: request.name.clone(),
            salt,
            arms: request.arms.clone(),
            traffic_percent: traffic,
            kind: ExperimentKind::Experiment,
            ..Default::default()
        };
        self.start(draft).await
    }

    /// Validates `draft`'s versions, loads them, and stores it as the running experiment
    /// (creation time, start of the log and first allocation set here).
    pub(crate) async fn start(&self, mut draft: Experiment) -> Result<Experiment> {
        for (i, arm) in draft.arms.iter().enumerate() {
            let info = self.store.get_version(&arm.version).await?.ok_or_else(|| {
                Error::NotFound(format!(
                    "arms[{i}].model_version: `{}` not found",
                    arm.version
                ))
            })?;
            info.check_activatable()
                .map_err(|why| Error::FailedPrecondition(format!("arms[{i}].{why}")))?;
        }
        self.check_loaded_limit(&draft.versions())?;
        let _one_change = self.experiments.change.lock().await;
        check_startable(&self.store.experiments().await?, &draft.name)?;
        // Pinned before loading, so an activation meanwhile cannot drop them.
        let mut pinned = self.engine.pinned_versions();
        pinned.extend(draft.versions());
        self.engine.pin_versions(pinned);
        let started = self.load_and_store(&mut draft).await;
        if started.is_err() {
            // Back to the pins of what runs.
            self.apply_running(self.running_experiment());
        }
        let (book, _) = started?;
        self.apply_book(&book);
        tracing::info!(experiment = %draft.name, arms = draft.arms.len(), "experiment started");
        Ok(draft)
    }

    /// Loads `draft`'s versions, then stores it as running (creation time, start of the
    /// log and first allocation set now).
    async fn load_and_store(&self, draft: &mut Experiment) -> Result<(ExperimentBook, bool)> {
        for version in draft.versions() {
            self.ensure_loaded(&version).await?;
        }
        let now = doppel_types::clock::now_ms();
        draft.created_ms = now;
        draft.start_seq = self.store.last_event_seq().await?;
        let weights: Vec<u32> = draft.arms.iter().map(|a| a.weight).collect();
        draft.allocations = vec![Allocation {
            from_ms: now,
            buckets: experiment::allocate(None, &weights, draft.traffic_percent),
        }];
        let draft = &*draft;
        self.write_book(|book| {
            check_startable(book, &draft.name)?;
            book.experiments.retain(|e| e.name != draft.name);
            book.make_room();
            book.experiments.push(draft.clone());
            Ok(true)
        })
        .await
    }

    /// Changes the weights (and optionally the traffic share) of a running experiment:
    /// buckets move only out of arms that shrank and into arms that grew.
    pub async fn update_weights(
        &self,
        name: &str,
        arms: &[Arm],
        traffic_percent: u32,
    ) -> Result<Experiment> {
        if traffic_percent > 100 {
            return Err(Error::invalid(
                "traffic_percent",
                "must be 1..=100 (0 keeps the experiment's)",
            ));
        }
        let _one_change = self.experiments.change.lock().await;
        let (book, _) = self
            .write_book(|book| {
                let running = find(book, name)?;
                if !running.is_running() {
                    return Err(Error::FailedPrecondition(format!(
                        "experiment `{name}` is stopped"
                    )));
                }
                if running.is_canary() {
                    return Err(Error::FailedPrecondition(
                        "a canary's share is set by its activation; promote it or let it roll back"
                            .into(),
                    ));
                }
                if running.allocations.len() > experiment::MAX_UPDATES {
                    return Err(Error::FailedPrecondition(format!(
                        "experiment `{name}` has had {} weight changes, the most kept; start a new one",
                        experiment::MAX_UPDATES
                    )));
                }
                let weights = new_weights(running, arms)?;
                let traffic = match traffic_percent {
                    0 => running.traffic_percent,
                    t => t,
                };
                let mut check = running.arms.clone();
                for (arm, &w) in check.iter_mut().zip(&weights) {
                    arm.weight = w;
                }
                let buckets = experiment::allocate(Some(running.buckets()), &weights, traffic);
                let now = doppel_types::clock::now_ms()
                    .max(running.allocations.last().map_or(0, |a| a.from_ms));
                let running = book
                    .experiments
                    .iter_mut()
                    .find(|e| e.name == name)
                    .expect("found above");
                running.arms = check;
                running.traffic_percent = traffic;
                running.allocations.push(Allocation {
                    from_ms: now,
                    buckets,
                });
                Ok(true)
            })
            .await?;
        self.apply_book(&book);
        find(&book, name).cloned()
    }

    /// Stops a running experiment (its customers go back to the active version); a
    /// stopped one is answered as is.
    pub async fn stop_experiment(&self, name: &str, reason: &str) -> Result<Experiment> {
        if let Some(stopped) = self.stop_running(&|e| e.name == name, reason).await? {
            return Ok(stopped);
        }
        self.experiment(name).await
    }

    /// Stops the running experiment `which` selects, with `reason`; returns it as
    /// stopped, or `None` when the running one (if any) is not selected.
    pub(crate) async fn stop_running(
        &self,
        which: &(dyn Fn(&Experiment) -> bool + Sync),
        reason: &str,
    ) -> Result<Option<Experiment>> {
        let _one_change = self.experiments.change.lock().await;
        let (book, wrote) = self
            .write_book(|book| {
                let Some(running) = book.running_mut().filter(|e| which(e)) else {
                    return Ok(false);
                };
                // Never before a time the experiment already used (clocks of nodes differ).
                let floor = running
                    .allocations
                    .last()
                    .map_or(running.created_ms, |a| a.from_ms.max(running.created_ms));
                running.stopped_ms = Some(doppel_types::clock::now_ms().max(floor));
                running.stop_reason = reason.to_owned();
                Ok(true)
            })
            .await?;
        self.apply_book(&book);
        if !wrote {
            return Ok(None);
        }
        let stopped = book
            .experiments
            .iter()
            .filter(|e| !e.is_running())
            .max_by_key(|e| e.stopped_ms)
            .cloned();
        if let Some(e) = &stopped {
            tracing::info!(experiment = %e.name, reason = %e.stop_reason, "experiment stopped");
        }
        Ok(stopped)
    }

    /// Every experiment kept: the running one first, then stopped ones, newest first.
    pub async fn list_experiments(&self) -> Result<Vec<Experiment>> {
        let mut experiments = self.store.experiments().await?.experiments;
        experiments.sort_by(|a, b| {
            b.is_running()
                .cmp(&a.is_running())
                .then(b.created_ms.cmp(&a.created_ms))
                .then(a.name.cmp(&b.name))
        });
        Ok(experiments)
    }

    /// One stored experiment by name.
    pub async fn experiment(&self, name: &str) -> Result<Experiment> {
        let book = self.store.experiments().await?;
        find(&book, name).cloned()
    }

    /// Applies the stored book if it changed (start-up, and a node following a change
    /// made through another node): loads and pins the running arms' versions. True if it
    /// changed. Only the revision is read when nothing changed.
    pub async fn follow_experiments(&self) -> Result<bool> {
        let _one_change = self.experiments.change.lock().await;
        let applied = *self.experiments.revision.lock();
        if self.store.experiments_revision().await? == applied {
            return Ok(false);
        }
        let book = self.store.experiments().await?;
        if book.revision == applied {
            return Ok(false);
        }
        if let Some(running) = book.running() {
            let mut pinned = self.engine.pinned_versions();
            pinned.extend(running.versions());
            self.engine.pin_versions(pinned);
            for version in running.versions() {
                self.ensure_loaded(&version).await?;
            }
        }
        self.apply_book(&book);
        Ok(true)
    }

    /// The arm answering `customer_id`'s offers, when an experiment runs and the customer
    /// is in one of its arms.
    pub fn arm_route(&self, customer_id: &str) -> Option<ArmRoute> {
        let running = self.experiments.running.read().clone()?;
        let arm = &running.arms[running.arm_of(customer_id)?];
        Some(ArmRoute {
            experiment: running.name.clone(),
            arm: arm.name.clone(),
            version: arm.version.clone(),
        })
    }

    /// Bytes the indexes of `versions` take here (those loaded).
    pub fn versions_memory(&self, versions: &[String]) -> u64 {
        versions
            .iter()
            .filter_map(|v| self.engine.describe(Some(v)).ok())
            .map(|d| d.memory_bytes as u64)
            .sum()
    }

    /// The running experiment as this node applies it.
    pub fn running_experiment(&self) -> Option<Arc<Experiment>> {
        self.experiments.running.read().clone()
    }

    /// Refuses an experiment whose versions, with the active and rollback ones, exceed
    /// `max_loaded_versions`.
    fn check_loaded_limit(&self, versions: &[String]) -> Result<()> {
        let limit = match self.config.max_loaded_versions {
            0 => crate::config::DEFAULT_MAX_LOADED_VERSIONS,
            n => n,
        };
        let mut needed: Vec<String> = versions.to_vec();
        needed.extend(self.engine.active_version());
        needed.extend(self.engine.previous_version());
        needed.sort();
        needed.dedup();
        if needed.len() > limit {
            return Err(Error::FailedPrecondition(format!(
                "the experiment needs {} versions loaded at once ({}, counting the active and \
                 rollback versions), over the limit of {limit} (--max-loaded-versions)",
                needed.len(),
                needed.join(", ")
            )));
        }
        Ok(())
    }

    /// Reads the book, lets `change` edit it (false: nothing to write), and writes it back
    /// by compare-and-set, retrying from a fresh read when another write came first.
    /// Returns the book as stored and whether this call wrote it. Callers hold the change
    /// lock.
    async fn write_book(
        &self,
        change: impl Fn(&mut ExperimentBook) -> Result<bool>,
    ) -> Result<(ExperimentBook, bool)> {
        for _ in 0..CAS_ATTEMPTS {
            let mut book = self.store.experiments().await?;
            if !change(&mut book)? {
                return Ok((book, false));
            }
            book.revision += 1;
            if self.store.put_experiments(&book).await? {
                return Ok((book, true));
            }
        }
        Err(Error::Unavailable(
            "the experiments changed under this write too often; retry".into(),
        ))
    }

    /// Makes `book` the one applied here, unless a newer one is: its running experiment
    /// routes offers, and only its versions stay pinned.
    fn apply_book(&self, book: &ExperimentBook) {
        // Held across the update, so two applies cannot leave the older one in force.
        let mut revision = self.experiments.revision.lock();
        if book.revision < *revision {
            return;
        }
        *revision = book.revision;
        self.apply_running(book.running().cloned().map(Arc::new));
    }

    fn apply_running(&self, running: Option<Arc<Experiment>>) {
        let pinned = running.as_ref().map(|e| e.versions()).unwrap_or_default();
        let changed = running.as_ref().map(|e| (&e.name, e.created_ms))
            != self
                .experiments
                .running
                .read()
                .as_ref()
                .map(|e| (&e.name, e.created_ms));
        self.engine.pin_versions(pinned);
        let canary = running.as_ref().is_some_and(|e| e.is_canary());
        *self.experiments.running.write() = running;
        if changed {
            self.reset_serving_stats(canary);
        }
    }
}

/// Refuses a new experiment while one runs or when its name is taken.
fn check_startable(book: &ExperimentBook, name: &str) -> Result<()> {
    // A new canary replaces the last one (its rollback reason stays on its version).
    if book
        .experiments
        .iter()
        .any(|e| e.name == name && !(e.is_canary() && name == CANARY_NAME && !e.is_running()))
    {
        return Err(Error::AlreadyExists(format!(
            "name: experiment `{name}` exists; choose another name"
        )));
    }
    if let Some(running) = book.running() {
        return Err(Error::FailedPrecondition(format!(
            "experiment `{}` is running; stop it (or promote the canary) first",
            running.name
        )));
    }
    Ok(())
}

/// The experiment named `name`, or NOT_FOUND naming `name`.
fn find<'a>(book: &'a ExperimentBook, name: &str) -> Result<&'a Experiment> {
    book.experiments
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::NotFound(format!("name: experiment `{name}` not found")))
}

/// The weights `arms` give the arms of `running`: every arm named once, with the arm's
/// version when one is given.
fn new_weights(running: &Experiment, arms: &[Arm]) -> Result<Vec<u32>> {
    if arms.len() != running.arms.len() {
        return Err(Error::invalid(
            "arms",
            format!(
                "give each of the experiment's {} arms once ({})",
                running.arms.len(),
                running
                    .arms
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut weights = vec![None; running.arms.len()];
    for (i, arm) in arms.iter().enumerate() {
        if arm.weight > experiment::MAX_WEIGHT {
            return Err(Error::invalid(
                format!("arms[{i}].weight"),
                format!("must be 0..={}", experiment::MAX_WEIGHT),
            ));
        }
        let Some(at) = running.arms.iter().position(|a| a.name == arm.name) else {
            return Err(Error::invalid(
                format!("arms[{i}].name"),
                format!(
                    "`{}` is not an arm of experiment `{}`",
                    arm.name, running.name
                ),
            ));
        };
        if !arm.version.is_empty() && arm.version != running.arms[at].version {
            return Err(Error::invalid(
                format!("arms[{i}].model_version"),
                format!(
                    "arm `{}` serves `{}`; versions cannot change (start a new experiment)",
                    arm.name, running.arms[at].version
                ),
            ));
        }
        if weights[at].replace(arm.weight).is_some() {
            return Err(Error::invalid(
                format!("arms[{i}].name"),
                format!("`{}` is given twice", arm.name),
            ));
        }
    }
    let weights: Vec<u32> = weights.into_iter().map(|w| w.unwrap_or(0)).collect();
    if weights.iter().all(|&w| w == 0) {
        return Err(Error::invalid("arms", "the weights must sum to ≥ 1"));
    }
    Ok(weights)
}
