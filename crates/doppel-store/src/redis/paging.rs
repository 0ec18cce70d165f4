//! Id-ordered paging over per-tag sorted sets, and batched reads of hash fields.
//!
//! Ids of one kind are spread over the shard tags (one lex-ordered zset each). A page is
//! the first `limit` ids after `after` of every zset, merged and cut to `limit`: each zset
//! contributes at most `limit`, so the merge is exact.

use std::collections::BTreeMap;

use redis::Cmd;

use super::connect::Conn;
use super::layout::Tag;
use crate::error::Result;

/// Up to `limit` ids after `after` (exclusive), in id (byte) order, with their tags.
pub(crate) async fn merged_ids(
    conn: &Conn,
    zsets: &[(Tag, String)],
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(Tag, String)>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let min = after.map_or_else(|| "-".to_owned(), |after| format!("({after}"));
    let count = i64::try_from(limit).unwrap_or(i64::MAX);
    let cmds: Vec<Cmd> = zsets
        .iter()
        .map(|(_, key)| {
            let mut cmd = redis::cmd("ZRANGEBYLEX");
            cmd.arg(key)
                .arg(&min)
                .arg("+")
                .arg("LIMIT")
                .arg(0)
                .arg(count);
            cmd
        })
        .collect();
    let pages: Vec<Vec<String>> = conn.query_each(&cmds).await?;
    let mut ids: Vec<(Tag, String)> = zsets
        .iter()
        .zip(pages)
        .flat_map(|((tag, _), page)| page.into_iter().map(move |id| (*tag, id)))
        .collect();
    ids.sort_by(|a, b| a.1.cmp(&b.1));
    ids.truncate(limit);
    Ok(ids)
}

/// The fields `fields` of the hash `hash_key(tag)` of each, in input order (`None` where
/// the field is gone): one `HMGET` per tag, run concurrently.
pub(crate) async fn hash_fields(
    conn: &Conn,
    fields: &[(Tag, String)],
    hash_key: impl Fn(Tag) -> String,
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut by_tag: BTreeMap<Tag, Vec<usize>> = BTreeMap::new();
    for (i, (tag, _)) in fields.iter().enumerate() {
        by_tag.entry(*tag).or_default().push(i);
    }
    let cmds: Vec<Cmd> = by_tag
        .iter()
        .map(|(tag, positions)| {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(hash_key(*tag));
            for &i in positions {
                cmd.arg(&fields[i].1);
            }
            cmd
        })
        .collect();
    let replies: Vec<Vec<Option<Vec<u8>>>> = conn.query_each(&cmds).await?;
    let mut out = vec![None; fields.len()];
    for (positions, values) in by_tag.values().zip(replies) {
        for (&i, value) in positions.iter().zip(values) {
            out[i] = value;
        }
    }
    Ok(out)
}
