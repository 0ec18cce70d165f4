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
