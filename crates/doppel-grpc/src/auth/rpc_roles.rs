//! The role each RPC needs. Health is open (probes carry no key); every other path needs
//! a key, at least `read`.

use super::api_keys::Role;

/// The role a call to `path` (`/package.Service/Method`) needs; `None`: no key needed.
pub fn required_role(path: &str) -> Option<Role> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or("");
    let method = parts.next().unwrap_or("");
    match service {
        "grpc.health.v1.Health" => None,
        "doppel.v1.ModelAdmin" | "doppel.v1.Experiments" => Some(Role::Admin),
        "doppel.v1.Ingest" => Some(match method {
            "UpsertCustomers" | "UpsertItems" | "RecordEvents" => Role::Write,
            "GetCustomer" => Role::Read,
            // DeleteCustomer (erasure), and anything added later until decided.
            _ => Role::Admin,
        }),
        "doppel.v1.Policies" => Some(match method {
            "GetContactPolicy" => Role::Read,
            // SetContactPolicy, and anything added later until decided.
            _ => Role::Admin,
        }),
        "doppel.v1.Audiences" => Some(match method {
            // Saved audiences are written state.
            "SaveAudience" | "RefreshAudience" | "DeleteAudience" => Role::Write,
            _ => Role::Read,
        }),
        "doppel.v1.Recommendations" | "doppel.v1.Segments" => Some(Role::Read),
        // Reflection and unknown services: any key (an unknown one then gets UNIMPLEMENTED).
        _ => Some(Role::Read),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_table() {
        assert_eq!(required_role("/grpc.health.v1.Health/Check"), None);
        assert_eq!(
            required_role("/doppel.v1.Recommendations/RecommendOffers"),
            Some(Role::Read)
        );
        assert_eq!(
            required_role("/doppel.v1.Audiences/FindLookalikes"),
            Some(Role::Read)
        );
        assert_eq!(
            required_role("/doppel.v1.Audiences/EstimateReach"),
            Some(Role::Read)
        );
        assert_eq!(
            required_role("/doppel.v1.Audiences/StreamAudienceMembers"),
            Some(Role::Read)
        );
        assert_eq!(
            required_role("/doppel.v1.Audiences/SaveAudience"),
            Some(Role::Write)
        );
        assert_eq!(
            required_role("/doppel.v1.Audiences/DeleteAudience"),
            Some(Role::Write)
        );
        assert_eq!(
            required_role("/doppel.v1.Ingest/GetCustomer"),
            Some(Role::Read)
        );
        assert_eq!(
            required_role("/doppel.v1.Ingest/RecordEvents"),
            Some(Role::Write)
        );
        assert_eq!(
            required_role("/doppel.v1.Ingest/DeleteCustomer"),
            Some(Role::Admin)
        );
        assert_eq!(
            required_role("/doppel.v1.ModelAdmin/ListVersions"),
            Some(Role::Admin)
        );
        assert_eq!(
            required_role("/doppel.v1.Policies/SetContactPolicy"),
            Some(Role::Admin)
        );
        assert_eq!(
            required_role("/doppel.v1.Policies/GetContactPolicy"),
            Some(Role::Read)
        );
        assert_eq!(
            required_role("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Some(Role::Read)
        );
    }
}
