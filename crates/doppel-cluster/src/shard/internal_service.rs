//! `doppel.internal.v1.Shard` on a shard node: the halves of a lookalike a router needs
//! (seed vectors, then a partial audience scored with the router's scorer), version
//! preparation and activation, and what the node holds. Answers cover only the requested
//! shards this node holds.

use std::sync::Arc;

use doppel_engine::{AudienceSize, LinearScorer, ScorerSpec, ShardScoring};
use doppel_node::Node;

use crate::shard::placement::ShardPlacement;
use doppel_grpc::convert::{prospect_to_pb, segment_from_pb};
use doppel_grpc::page_stream::{PageStream, stream_pages};
use doppel_grpc::status::{engine_status, node_status};
use doppel_proto::internal::v1 as ipb;
use doppel_proto::internal::v1::shard_server::Shard;
use doppel_proto::v1 as pb;
use doppel_types::limits::LOOKALIKE_PAGE_SIZE;
use tonic::{Request, Response, Status};

/// Seeds per streamed page.
const SEED_PAGE: usize = 2_000;

/// The internal service of one shard node.
pub struct ShardService {
    node: Arc<Node>,
    placement: Arc<ShardPlacement>,
    node_id: String,
}

impl ShardService {
    /// The service of `node`, known to the cluster as `node_id`.
    pub fn new(node: Arc<Node>, placement: Arc<ShardPlacement>, node_id: String) -> Self {
        Self {
            node,
            placement,
            node_id,
        }
    }

    /// Requested shards this node holds, in order.
    fn held(&self, requested: &[u32]) -> Vec<u32> {
        let engine = self.node.engine();
        let mut held: Vec<u32> = requested
            .iter()
            .copied()
            .filter(|s| engine.owns_shard(*s))
            .collect();
        held.sort_unstable();
        held.dedup();
        held
    }
}

fn segments(field: &str, list: Vec<pb::Segment>) -> Result<Vec<(String, String)>, Status> {
    list.into_iter()
        .enumerate()
        .map(|(i, s)| segment_from_pb(&format!("{field}[{i}]"), Some(s)))
        .collect()
}

fn vectors(list: Vec<ipb::Vector>) -> Vec<Vec<f32>> {
    list.into_iter().map(|v| v.values).collect()
}

#[tonic::async_trait]
impl Shard for ShardService {
    type ResolveSeedsStream = PageStream<ipb::SeedPage>;
    type ScoreAudienceStream = PageStream<ipb::ScoredPage>;

    async fn node_status(
        &self,
        _request: Request<ipb::NodeStatusRequest>,
    ) -> Result<Response<ipb::NodeStatusResponse>, Status> {
        let engine = self.node.engine();
        let (shards_from_snapshot, shards_rebuilt) = self.placement.takeovers();
        Ok(Response::new(ipb::NodeStatusResponse {
            node_id: self.node_id.clone(),
            shards: engine.held_shards(),
            shard_count: engine.config().shard_count,
            active_version: engine.active_version().unwrap_or_default(),
            loaded_versions: engine.loaded_versions(),
            previous_version: engine.previous_version().unwrap_or_default(),
            shards_from_snapshot,
            shards_rebuilt,
        }))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn resolve_seeds(
        &self,
        request: Request<ipb::ResolveSeedsRequest>,
    ) -> Result<Response<Self::ResolveSeedsStream>, Status> {
        let ipb::ResolveSeedsRequest {
            model_version,
            shards,
            customer_ids,
            negative_customer_ids,
            seed_segments,
            moments,
        } = request.into_inner();
        let shards = self.held(&shards);
        let seed_segments = segments("seed_segments", seed_segments)?;
        let engine = Arc::clone(self.node.engine());
        let held = shards.clone();
        let lookup = tokio::task::spawn_blocking(move || {
            let lookup = engine.lookup_seeds(
                &model_version,
                &held,
                &customer_ids,
                &negative_customer_ids,
                &seed_segments,
            )?;
            let moments = if moments {
                engine.shard_moments(&model_version, &held)?
            } else {
                Vec::new()
            };
            Ok::<_, doppel_engine::Error>((lookup, moments))
        })
        .await
        .map_err(|e| Status::internal(format!("seed lookup task: {e}")))?
        .map_err(engine_status)?;
        let (lookup, moments) = lookup;
        let seeds: Vec<ipb::SeedVector> = lookup
            .seeds
            .into_iter()
            .map(|s| ipb::SeedVector {
                customer_id: s.customer_id,
                vector: s.vector.unwrap_or_default(),
                negative: s.negative,
                segment: s.segment,
                length: s.length,
            })
            .collect();
        let mut pages: Vec<ipb::SeedPage> = seeds
            .chunks(SEED_PAGE)
            .map(|chunk| ipb::SeedPage {
                model_version: lookup.version.clone(),
                seeds: chunk.to_vec(),
                ..Default::default()
            })
            .collect();
        if pages.is_empty() {
            pages.push(ipb::SeedPage {
                model_version: lookup.version.clone(),
                ..Default::default()
            });
        }
        let first = &mut pages[0];
        first.unknown_ids = lookup.unknown;
        first.customers = lookup.customers as u64;
        first.shards = shards;
        first.dim = lookup.dim as u32;
        // One shard's moments per page: up to 1 MiB each at the classifier's largest dim.
        pages.extend(moments.into_iter().map(|(shard, m)| ipb::SeedPage {
            model_version: lookup.version.clone(),
            moments: vec![ipb::ShardMoments {
                shard,
                n: m.n,
                sum: m.sum,
                gram: m.gram,
            }],
            ..Default::default()
        }));
        Ok(Response::new(stream_pages(pages)))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn score_audience(
        &self,
        request: Request<ipb::ScoreAudienceRequest>,
    ) -> Result<Response<Self::ScoreAudienceStream>, Status> {
        let ipb::ScoreAudienceRequest {
            model_version,
            shards,
            positives,
            negatives,
            excluded_ids,
            seed_segments,
            exclude_segments,
            filter,
            exclude_existing_customers,
            size,
            explain_seed_ids,
            explain_seed_vectors,
            group_attributes,
            last_group_is_balance,
            linear,
        } = request.into_inner();
        if group_attributes.len() > doppel_engine::MAX_GROUP_ATTRIBUTES + 1 {
            return Err(Status::invalid_argument(
                "group_attributes: too many attributes",
            ));
        }
        let size = match size {
            Some(ipb::score_audience_request::Size::Count(n)) => AudienceSize::Count(n),
            Some(ipb::score_audience_request::Size::TopPercent(p)) => AudienceSize::TopPercent(p),
            Some(ipb::score_audience_request::Size::MinScore(s)) => AudienceSize::MinScore(s),
            None => return Err(Status::invalid_argument("size: required")),
        };
        let explain_seed_vectors = vectors(explain_seed_vectors);
        if explain_seed_ids.len() != explain_seed_vectors.len() {
            return Err(Status::invalid_argument(
                "explain_seed_vectors: one per explain_seed_ids entry",
            ));
        }
        let shards = self.held(&shards);
        let scoring = ShardScoring {
            shards: shards.clone(),
            scorer: ScorerSpec {
                positives: vectors(positives),
                negatives: vectors(negatives),
                linear: linear.map(|l| LinearScorer {
                    weights: l.weights,
                    offset: l.offset,
                    scale: l.scale,
                }),
            },
            excluded_ids,
            seed_segments: segments("seed_segments", seed_segments)?,
            exclude_segments: segments("exclude_segments", exclude_segments)?,
            filter: filter.into_iter().collect(),
            exclude_existing_customers,
            size,
            explain: (!explain_seed_ids.is_empty())
                .then_some((explain_seed_ids, explain_seed_vectors)),
            group_attributes,
            last_group_is_balance,
            cancel: Default::default(),
        };
        // Dropped with this call when the router gives up on it: the scan then stops.
        let _stop_when_abandoned = scoring.cancel.guard();
        let engine = Arc::clone(self.node.engine());
        let audience =
            tokio::task::spawn_blocking(move || engine.score_audience(&model_version, &scoring))
                .await
                .map_err(|e| Status::internal(format!("scoring task: {e}")))?
                .map_err(engine_status)?;
        let width = audience.groups.attributes().len();
        let groups_of = |from: usize, count: usize| -> Vec<ipb::ProspectGroups> {
            if width == 0 {
                return Vec::new();
            }
            audience.codes[from * width..(from + count) * width]
                .chunks_exact(width)
                .map(|codes| ipb::ProspectGroups {
                    codes: codes.to_vec(),
                })
                .collect()
        };
        let mut pages: Vec<ipb::ScoredPage> = audience
            .prospects
            .chunks(LOOKALIKE_PAGE_SIZE)
            .enumerate()
            .map(|(i, chunk)| ipb::ScoredPage {
                model_version: audience.version.clone(),
                prospects: chunk.iter().map(prospect_to_pb).collect(),
                prospect_groups: groups_of(i * LOOKALIKE_PAGE_SIZE, chunk.len()),
                ..Default::default()
            })
            .collect();
        if pages.is_empty() {
            pages.push(ipb::ScoredPage {
                model_version: audience.version.clone(),
                ..Default::default()
            });
        }
        pages[0].eligible_population = audience.eligible_population;
        pages[0].shards = shards;
        pages[0].group_counts = audience
            .groups
            .eligible_counts()
            .map(|(attribute, value, eligible_count)| ipb::GroupCount {
                attribute: attribute.to_owned(),
                value: value.to_owned(),
                eligible_count,
            })
            .collect();
        Ok(Response::new(stream_pages(pages)))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn prepare_version(
        &self,
        request: Request<ipb::PrepareVersionRequest>,
    ) -> Result<Response<ipb::PrepareVersionResponse>, Status> {
        let model_version = request.into_inner().model_version;
        let loaded_before = self
            .node
            .engine()
            .loaded_versions()
            .contains(&model_version);
        self.node
            .ensure_loaded(&model_version)
            .await
            .map_err(node_status)?;
        if !loaded_before {
            // Training on another node wrote segment attributes onto profiles held here.
            self.node.reload_customers().await.map_err(node_status)?;
        }
        Ok(Response::new(ipb::PrepareVersionResponse {
            node_id: self.node_id.clone(),
            model_version,
            shards: self.node.engine().held_shards(),
        }))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn activate_version(
        &self,
        request: Request<ipb::PrepareVersionRequest>,
    ) -> Result<Response<ipb::PrepareVersionResponse>, Status> {
        let model_version = request.into_inner().model_version;
        self.node
            .switch_to(&model_version)
            .await
            .map_err(node_status)?;
        tracing::info!("version activated on this node");
        // The activation may have ended a canary.
        self.node.follow_experiments().await.map_err(node_status)?;
        Ok(Response::new(ipb::PrepareVersionResponse {
            node_id: self.node_id.clone(),
            model_version,
            shards: self.node.engine().held_shards(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn follow_experiments(
        &self,
        _request: Request<ipb::FollowExperimentsRequest>,
    ) -> Result<Response<ipb::FollowExperimentsResponse>, Status> {
        self.node.follow_experiments().await.map_err(node_status)?;
        Ok(Response::new(ipb::FollowExperimentsResponse {
            node_id: self.node_id.clone(),
            running: self
                .node
                .running_experiment()
                .map(|e| e.name.clone())
                .unwrap_or_default(),
        }))
    }
}
