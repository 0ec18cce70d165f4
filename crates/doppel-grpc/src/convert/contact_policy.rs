//! The contact policy and its frequency caps, and a customer's counts per capped scope.

use doppel_engine::CapCount;
use doppel_proto::v1 as pb;
use doppel_proto::v1::frequency_cap::CapScope as PbScope;
use doppel_types::contact_policy::MAX_CAPS;
use doppel_types::limits::MAX_ATTRIBUTE_LEN;
use doppel_types::{CapScope, ContactPolicy, FrequencyCap};

use crate::status::FieldViolation;

/// Converts and validates a contact policy; the error names the field (`caps[i].scope`).
pub fn contact_policy_from_pb(policy: pb::ContactPolicy) -> Result<ContactPolicy, FieldViolation> {
    let pb::ContactPolicy { caps } = policy;
    if caps.len() > MAX_CAPS {
        return Err(FieldViolation::new(
            "caps",
            format!("at most {MAX_CAPS} caps, got {}", caps.len()),
        ));
    }
    let caps = caps
        .into_iter()
        .enumerate()
        .map(|(i, cap)| cap_from_pb(i, cap))
        .collect::<Result<Vec<_>, _>>()?;
    let policy = ContactPolicy { caps };
    policy
        .validate()
        .map_err(|(field, reason)| FieldViolation::new(field, reason))?;
    Ok(policy)
}

fn cap_from_pb(i: usize, cap: pb::FrequencyCap) -> Result<FrequencyCap, FieldViolation> {
    let pb::FrequencyCap {
        scope,
        attribute,
        max_impressions,
        window_seconds,
    } = cap;
    let field = |name: &str| format!("caps[{i}].{name}");
    let scope = match PbScope::try_from(scope) {
        Ok(PbScope::Item) => CapScope::Item,
        Ok(PbScope::Category) => CapScope::Category,
        Ok(PbScope::All) => CapScope::All,
        Ok(PbScope::Attribute) => {
            if attribute.is_empty() {
                return Err(FieldViolation::new(
                    field("attribute"),
                    "an ATTRIBUTE cap names the item attribute it counts (e.g. `campaign`)",
                ));
            }
            if attribute.len() > MAX_ATTRIBUTE_LEN {
                return Err(FieldViolation::new(
                    field("attribute"),
                    format!("at most {MAX_ATTRIBUTE_LEN} bytes"),
                ));
            }
            CapScope::Attribute(attribute.clone())
        }
        Ok(PbScope::Unspecified) | Err(_) => {
            return Err(FieldViolation::new(
                field("scope"),
                "must be ITEM, CATEGORY, ALL or ATTRIBUTE",
            ));
        }
    };
    if !attribute.is_empty() && !matches!(scope, CapScope::Attribute(_)) {
        return Err(FieldViolation::new(
            field("attribute"),
            "only an ATTRIBUTE cap names an attribute",
        ));
    }
    Ok(FrequencyCap {
        scope,
        max_impressions,
        window_seconds,
    })
}

/// A frequency cap as protobuf.
pub fn cap_to_pb(cap: FrequencyCap) -> pb::FrequencyCap {
    let FrequencyCap {
        scope,
        max_impressions,
        window_seconds,
    } = cap;
    let (scope, attribute) = match scope {
        CapScope::Item => (PbScope::Item, String::new()),
        CapScope::Category => (PbScope::Category, String::new()),
        CapScope::All => (PbScope::All, String::new()),
        CapScope::Attribute(name) => (PbScope::Attribute, name),
    };
    pb::FrequencyCap {
        scope: scope as i32,
        attribute,
        max_impressions,
        window_seconds,
    }
}

/// A contact policy as protobuf.
pub fn contact_policy_to_pb(policy: ContactPolicy) -> pb::ContactPolicy {
    pb::ContactPolicy {
        caps: policy.caps.into_iter().map(cap_to_pb).collect(),
    }
}

/// A customer's count of one capped scope as protobuf.
pub fn cap_count_to_pb(count: CapCount) -> pb::CapCount {
    let CapCount {
        cap,
        key,
        impressions,
    } = count;
    pb::CapCount {
        cap: Some(cap_to_pb(cap)),
        key,
        impressions,
    }
}
