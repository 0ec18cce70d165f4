//! Which cost class a call belongs to, by its path.

/// How expensive a call is, for admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostClass {
    /// Milliseconds of work: offers, similar items, profiles, segments, administration.
    Cheap,
    /// Seconds of work on whole populations: audiences, imports, training.
    Heavy,
}

impl CostClass {
    /// The class's name in messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            CostClass::Cheap => "cheap",
            CostClass::Heavy => "heavy",
        }
    }
}

/// The class of a call to `path` (`/package.Service/Method`); `None`: never limited
/// (health, so probes answer under overload).
pub fn cost_class(path: &str) -> Option<CostClass> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or("");
    let method = parts.next().unwrap_or("");
    match (service, method) {
        ("grpc.health.v1.Health", _) => None,
        // Reading or deleting a saved audience's description is cheap; members, audiences and
        // reach curves are not.
        ("doppel.v1.Audiences", "GetAudience" | "ListAudiences" | "DeleteAudience") => {
            Some(CostClass::Cheap)
        }
        ("doppel.v1.Audiences", _) => Some(CostClass::Heavy),
        ("doppel.v1.ModelAdmin", "ImportEmbeddings" | "Train") => Some(CostClass::Heavy),
        _ => Some(CostClass::Cheap),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_imports_and_training_are_heavy_health_is_free() {
        assert_eq!(cost_class("/grpc.health.v1.Health/Check"), None);
        assert_eq!(
            cost_class("/doppel.v1.Audiences/FindLookalikes"),
            Some(CostClass::Heavy)
        );
        assert_eq!(
            cost_class("/doppel.v1.ModelAdmin/Train"),
            Some(CostClass::Heavy)
        );
        assert_eq!(
            cost_class("/doppel.v1.ModelAdmin/ImportEmbeddings"),
            Some(CostClass::Heavy)
        );
        assert_eq!(
            cost_class("/doppel.v1.ModelAdmin/ListVersions"),
            Some(CostClass::Cheap)
        );
        assert_eq!(
            cost_class("/doppel.v1.Recommendations/RecommendOffers"),
            Some(CostClass::Cheap)
        );
    }
}
