//! Every protobuf ⇄ domain conversion and request check of `doppel.v1`, in one module the
//! single node's services and the router both use. `TryFrom`-style functions destructure
//! every field, so a new proto field breaks the build until it is handled.
//!
//! * `records` — customers, items, events, versions' metadata; ids and event times
//! * `lookalike` — lookalike requests and audience pages
//! * `contact_policy` — the contact policy (frequency caps) and a customer's cap counts
//! * `customer_segments` — segment references, member pages and tokens
//! * `experiments` — experiments, arms, canary guards and reports
//! * `versions` — version names, embedding chunks, training requests and progress

mod contact_policy;
mod customer_segments;
mod experiments;
mod lookalike;
mod records;
mod versions;

pub use contact_policy::*;
pub use customer_segments::*;
pub use experiments::*;
pub use lookalike::*;
pub use records::*;
pub use versions::*;
