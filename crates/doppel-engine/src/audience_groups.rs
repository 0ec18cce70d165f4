//! Groups of customers by attribute value, for fairness audits and balanced audiences.
//!
//! [`Groups`] interns the values of a few audited attributes (customers without one form
//! the value `""`) and counts the eligible population per value. The same table is built
//! by a single node from its profiles and by a router from the counts its shard nodes
//! send, so both audit and balance with the same code ([`crate::fairness`]).

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Most audited attributes per request.
pub const MAX_GROUP_ATTRIBUTES: usize = 8;
/// Most distinct values of one audited attribute among the eligible: an audit of an
/// id-like attribute would be a list of customers, not of groups.
pub const MAX_GROUP_VALUES: usize = 256;

/// The values of a few attributes and how many eligible customers hold each.
#[derive(Clone, Debug, Default)]
pub struct Groups {
    attributes: Vec<String>,
    /// The request field each attribute came from, for errors.
    fields: Vec<String>,
    values: Vec<Vec<String>>,
    index: Vec<HashMap<String, u32>>,
    eligible: Vec<Vec<u64>>,
}

impl Groups {
    /// An empty table over `attributes` (in request order; at most
    /// [`MAX_GROUP_ATTRIBUTES`], checked at the edge).
    pub fn new(attributes: Vec<String>) -> Self {
        let n = attributes.len();
        Self {
            fields: (0..n).map(|i| format!("audit_attributes[{i}]")).collect(),
            attributes,
            values: vec![Vec::new(); n],
            index: vec![HashMap::new(); n],
            eligible: vec![Vec::new(); n],
        }
    }

    /// Names the request field attribute `attr` came from (errors name it).
    pub fn with_field(mut self, attr: usize, field: &str) -> Self {
        if let Some(f) = self.fields.get_mut(attr) {
            *f = field.to_owned();
        }
        self
    }

    /// The attributes, in request order.
    pub fn attributes(&self) -> &[String] {
        &self.attributes
    }

    /// True when no attribute is grouped.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// The code of `value` of attribute `attr`, interned on first sight. More than
    /// [`MAX_GROUP_VALUES`] values is FAILED_PRECONDITION naming the attribute.
    pub fn code(&mut self, attr: usize, value: &str) -> Result<u32> {
        if let Some(&code) = self.index[attr].get(value) {
            return Ok(code);
        }
        if self.values[attr].len() >= MAX_GROUP_VALUES {
            let field = &self.fields[attr];
            return Err(Error::FailedPrecondition(format!(
                "{field}: `{}` has more than {MAX_GROUP_VALUES} values among the eligible \
                 customers; audit an attribute with few values (age band, gender, country)",
                self.attributes[attr]
            )));
        }
        let code = self.values[attr].len() as u32;
        self.values[attr].push(value.to_owned());
        self.index[attr].insert(value.to_owned(), code);
        self.eligible[attr].push(0);
        Ok(code)
    }

    /// Adds `count` eligible customers with `value` of attribute `attr`.
    pub fn add_eligible(&mut self, attr: usize, value: &str, count: u64) -> Result<u32> {
        let code = self.code(attr, value)?;
        self.eligible[attr][code as usize] += count;
        Ok(code)
    }

    /// The name of code `code` of attribute `attr`.
    pub fn value(&self, attr: usize, code: u32) -> &str {
        &self.values[attr][code as usize]
    }

    /// Eligible customers per code of attribute `attr`.
    pub fn eligible(&self, attr: usize) -> &[u64] {
        &self.eligible[attr]
    }

    /// Every (attribute, value, eligible count), attributes in order, values as interned.
    pub fn eligible_counts(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.attributes
            .iter()
            .enumerate()
            .flat_map(move |(a, name)| {
                self.values[a]
                    .iter()
                    .zip(&self.eligible[a])
                    .map(move |(v, &n)| (name.as_str(), v.as_str(), n))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_interned_and_counted_per_attribute() {
        let mut g = Groups::new(vec!["gender".into(), "country".into()]);
        assert_eq!(g.add_eligible(0, "f", 1).unwrap(), 0);
        assert_eq!(g.add_eligible(1, "FR", 1).unwrap(), 0);
        assert_eq!(g.add_eligible(0, "m", 2).unwrap(), 1);
        assert_eq!(g.add_eligible(1, "", 1).unwrap(), 1);
        assert_eq!(g.code(0, "f").unwrap(), 0);
        assert_eq!(g.eligible(0), [1, 2]);
        assert_eq!(g.value(1, 1), "");
        let counts: Vec<_> = g.eligible_counts().collect();
        assert_eq!(counts[3], ("country", "", 1));
    }

    #[test]
    fn too_many_values_name_the_attribute() {
        let mut g = Groups::new(vec!["a".into(), "email".into()]);
        for i in 0..MAX_GROUP_VALUES {
            g.code(1, &i.to_string()).unwrap();
        }
        match g.code(1, "one more") {
            Err(Error::FailedPrecondition(m)) => assert!(m.starts_with("audit_attributes[1]")),
            other => panic!("{other:?}"),
        }
    }
}
