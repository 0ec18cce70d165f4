//! Experiments, canary guards and experiment reports.

use doppel_node::experiment_report::{ArmReport, Comparison, ExperimentReport};
use doppel_node::experiment_stats::Rate;
use doppel_proto::v1 as pb;
use doppel_types::experiment::MAX_ARMS;
use doppel_types::{Arm, CanaryGuard, Experiment, ExperimentKind};

use crate::status::FieldViolation;

/// Converts arms; checks their count and version names (the node checks the rest).
pub fn arms_from_pb(
    arms: Vec<pb::Arm>,
    versions_required: bool,
) -> Result<Vec<Arm>, FieldViolation> {
    if arms.is_empty() || arms.len() > MAX_ARMS {
        return Err(FieldViolation::new("arms", format!("1..={MAX_ARMS} arms")));
    }
    arms.into_iter()
        .enumerate()
        .map(|(i, arm)| {
            let pb::Arm {
                name,
                model_version,
                weight,
            } = arm;
            if (versions_required || !model_version.is_empty())
                && !doppel_types::is_valid_version_name(&model_version)
            {
                return Err(FieldViolation::new(
                    format!("arms[{i}].model_version"),
                    "must be 1..=128 bytes of [A-Za-z0-9._-], starting with a letter or digit",
                ));
            }
            Ok(Arm {
                name,
                version: model_version,
                weight,
            })
        })
        .collect()
}

/// Converts a canary guard (absent: no limits).
pub fn guard_from_pb(guard: Option<pb::CanaryGuard>) -> CanaryGuard {
    let pb::CanaryGuard {
        max_error_rate,
        max_p99_ms,
        min_ctr_ratio,
        min_requests,
        min_impressions,
    } = guard.unwrap_or_default();
    CanaryGuard {
        max_error_rate,
        max_p99_ms,
        min_ctr_ratio,
        min_requests,
        min_impressions,
    }
}

fn arm_to_pb(arm: &Arm) -> pb::Arm {
    pb::Arm {
        name: arm.name.clone(),
        model_version: arm.version.clone(),
        weight: arm.weight,
    }
}

/// An experiment as clients see it; `loaded_memory_bytes` is what its versions hold here.
pub fn experiment_to_pb(experiment: &Experiment, loaded_memory_bytes: u64) -> pb::ExperimentInfo {
    pb::ExperimentInfo {
        name: experiment.name.clone(),
        arms: experiment.arms.iter().map(arm_to_pb).collect(),
        salt: experiment.salt.clone(),
        state: state_name(experiment).into(),
        created_ms: experiment.created_ms,
        stopped_ms: experiment.stopped_ms.unwrap_or(0),
        traffic_percent: experiment.traffic_percent,
        arm_buckets: experiment.arm_buckets(),
        kind: match experiment.kind {
            ExperimentKind::Experiment => "experiment",
            ExperimentKind::Canary(_) => "canary",
        }
        .into(),
        stop_reason: experiment.stop_reason.clone(),
        updates: u32::try_from(experiment.allocations.len().saturating_sub(1)).unwrap_or(u32::MAX),
        loaded_memory_bytes,
    }
}

fn state_name(experiment: &Experiment) -> &'static str {
    if experiment.is_running() {
        "running"
    } else {
        "stopped"
    }
}

fn rate_to_pb(rate: Rate) -> pb::Rate {
    pb::Rate {
        value: rate.value,
        lower: rate.lower,
        upper: rate.upper,
    }
}

fn comparison_to_pb(c: Comparison) -> pb::Comparison {
    pb::Comparison {
        ctr_difference: c.ctr_difference,
        ctr_p_value: c.ctr_p_value,
        conversion_difference: c.conversion_difference,
        conversion_p_value: c.conversion_p_value,
    }
}

fn arm_report_to_pb(arm: ArmReport) -> pb::ArmReport {
    let ArmReport {
        name,
        version,
        weight,
        buckets,
        customers_assigned,
        customers_exposed,
        impressions,
        clicks,
        purchases,
        conversions,
        revenue,
        ctr,
        conversion,
        versus_first,
    } = arm;
    pb::ArmReport {
        name,
        model_version: version,
        weight,
        customers_assigned,
        customers_exposed,
        impressions,
        clicks,
        purchases,
        revenue,
        ctr: Some(rate_to_pb(ctr)),
        conversion: Some(rate_to_pb(conversion)),
        versus_first: versus_first.map(comparison_to_pb),
        buckets,
        conversions,
    }
}

/// A report as clients see it.
pub fn report_to_pb(report: ExperimentReport) -> pb::ExperimentReport {
    let ExperimentReport {
        experiment,
        attribution_seconds,
        arms,
        srm_p_value,
        srm_exposed_p_value,
        events_scanned,
    } = report;
    pb::ExperimentReport {
        state: state_name(&experiment).into(),
        name: experiment.name,
        created_ms: experiment.created_ms,
        stopped_ms: experiment.stopped_ms.unwrap_or(0),
        attribution_seconds,
        arms: arms.into_iter().map(arm_report_to_pb).collect(),
        srm_p_value,
        srm_exposed_p_value,
        events_scanned,
    }
}
