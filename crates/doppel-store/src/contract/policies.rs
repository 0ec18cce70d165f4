//! The contact policy: absent until set, then replaced whole.

use doppel_types::{CapScope, ContactPolicy, FrequencyCap};

use crate::store_trait::Store;

/// No policy at first; a set policy reads back equal; a second one replaces it.
pub async fn contact_policy_round_trips(store: &dyn Store) {
    assert_eq!(store.contact_policy().await.expect("get"), None);
    let first = ContactPolicy {
        caps: vec![
            FrequencyCap {
                scope: CapScope::Attribute("campaign".into()),
                max_impressions: 3,
                window_seconds: 86_400,
            },
            FrequencyCap {
                scope: CapScope::All,
                max_impressions: 20,
                window_seconds: 3_600,
            },
        ],
    };
    store.put_contact_policy(&first).await.expect("put");
    assert_eq!(store.contact_policy().await.expect("get"), Some(first));
    let empty = ContactPolicy::default();
    store.put_contact_policy(&empty).await.expect("put");
    assert_eq!(store.contact_policy().await.expect("get"), Some(empty));
}

/// No experiments at first; a write succeeds only on the next revision, so a writer that
/// read an older book cannot undo a newer write.
pub async fn experiments_compare_and_set(store: &dyn Store) {
    use doppel_types::{Arm, Experiment, ExperimentBook};
    let empty = store.experiments().await.expect("get");
    assert_eq!(empty, ExperimentBook::default());
    let first = ExperimentBook {
        revision: 1,
        experiments: vec![Experiment {
            name: "e1".into(),
            salt: "s".into(),
            arms: vec![Arm {
                name: "a".into(),
                version: "v1".into(),
                weight: 1,
            }],
            traffic_percent: 100,
            allocations: vec![doppel_types::experiment::Allocation {
                from_ms: 5,
                buckets: doppel_types::experiment::allocate(None, &[1], 100),
            }],
            ..Default::default()
        }],
    };
    assert!(store.put_experiments(&first).await.expect("put"));
    assert_eq!(store.experiments().await.expect("get"), first);
    assert_eq!(store.experiments_revision().await.expect("revision"), 1);
    // A second writer that read the empty book loses.
    let stale = ExperimentBook {
        revision: 1,
        experiments: Vec::new(),
    };
    assert!(!store.put_experiments(&stale).await.expect("put"));
    let mut second = first.clone();
    second.revision = 2;
    second.experiments[0].stopped_ms = Some(9);
    assert!(store.put_experiments(&second).await.expect("put"));
    assert!(!store.put_experiments(&second).await.expect("put"));
    assert_eq!(store.experiments().await.expect("get"), second);
}
