//! Columns of customer attribute values by slot, for audits and balancing: reading one
//! attribute of a million profiles through their scattered attribute maps costs far more
//! than the scoring itself, so the first audit of an attribute builds a column of value
//! codes, and profile writes keep the cached columns in step.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use doppel_index::PointId;
use parking_lot::Mutex;

/// Attributes with more distinct values are not cached (an audit refuses them anyway).
pub(crate) const MAX_COLUMN_VALUES: usize = 1_024;
/// Most columns cached at once.
const MAX_COLUMNS: usize = 32;

/// One attribute's value code per customer slot; code 0 is `""` (no value, or no profile).
#[derive(Clone, Debug)]
pub(crate) struct Column {
    values: Vec<String>,
    index: HashMap<String, u32>,
    codes: Vec<u32>,
}

impl Column {
    fn new() -> Self {
        Self {
            values: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
            codes: Vec::new(),
        }
    }

    /// Sets `slot`'s value; false when the column would hold too many values.
    fn set(&mut self, slot: PointId, value: &str) -> bool {
        let code = match self.index.get(value) {
            Some(&code) => code,
            None if self.values.len() >= MAX_COLUMN_VALUES => return false,
            None => {
                let code = self.values.len() as u32;
                self.values.push(value.to_owned());
                self.index.insert(value.to_owned(), code);
                code
            }
        };
        let i = slot as usize;
        if self.codes.len() <= i {
            self.codes.resize(i + 1, 0);
        }
        self.codes[i] = code;
        true
    }

    /// The value code of `slot`.
    pub(crate) fn code(&self, slot: PointId) -> u32 {
        self.codes.get(slot as usize).copied().unwrap_or(0)
    }

    /// The value of code `code`.
    pub(crate) fn value(&self, code: u32) -> &str {
        &self.values[code as usize]
    }

    /// Distinct values (codes are below this).
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// The cached columns, by attribute key.
#[derive(Debug, Default)]
pub(crate) struct AttributeColumns {
    columns: Mutex<HashMap<String, Arc<Column>>>,
}

impl AttributeColumns {
    /// The column of `key`, built from `rows` (slot, attributes) on first use; `None` when
    /// the attribute has too many values to cache.
    pub(crate) fn get<'a>(
        &self,
        key: &str,
        rows: impl Iterator<Item = (PointId, &'a BTreeMap<String, String>)>,
    ) -> Option<Arc<Column>> {
        if let Some(column) = self.columns.lock().get(key) {
            return Some(Arc::clone(column));
        }
        // Built outside the lock: concurrent audits of other attributes do not wait.
        let mut column = Column::new();
        for (slot, attributes) in rows {
            if !column.set(slot, attributes.get(key).map_or("", String::as_str)) {
                return None;
            }
        }
        let column = Arc::new(column);
        let mut columns = self.columns.lock();
        if columns.len() < MAX_COLUMNS {
            columns.insert(key.to_owned(), Arc::clone(&column));
        }
        Some(column)
    }

    /// Keeps every cached column in step with `slot`'s new attributes (`None`: erased).
    pub(crate) fn update(&mut self, slot: PointId, attributes: Option<&BTreeMap<String, String>>) {
        self.columns.get_mut().retain(|key, column| {
            let value = attributes
                .and_then(|a| a.get(key))
                .map_or("", String::as_str);
            Arc::make_mut(column).set(slot, value)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_built_once_and_follow_writes() {
        let rows: Vec<BTreeMap<String, String>> = vec![
            BTreeMap::from([("g".to_owned(), "f".to_owned())]),
            BTreeMap::new(),
            BTreeMap::from([("g".to_owned(), "m".to_owned())]),
        ];
        let mut columns = AttributeColumns::default();
        let it = || rows.iter().enumerate().map(|(i, a)| (i as PointId, a));
        let c = columns.get("g", it()).expect("column");
        assert_eq!(
            (c.value(c.code(0)), c.value(c.code(1)), c.value(c.code(2))),
            ("f", "", "m")
        );
        columns.update(1, Some(&BTreeMap::from([("g".to_owned(), "x".to_owned())])));
        columns.update(0, None);
        let c = columns.get("g", std::iter::empty()).expect("cached");
        assert_eq!(
            (c.value(c.code(0)), c.value(c.code(1)), c.value(c.code(7))),
            ("", "x", "")
        );
    }

    #[test]
    fn id_like_attributes_are_not_cached() {
        let rows: Vec<BTreeMap<String, String>> = (0..MAX_COLUMN_VALUES + 1)
            .map(|i| BTreeMap::from([("email".to_owned(), i.to_string())]))
            .collect();
        let columns = AttributeColumns::default();
        assert!(
            columns
                .get(
                    "email",
                    rows.iter().enumerate().map(|(i, a)| (i as PointId, a))
                )
                .is_none()
        );
    }
}
