//! One query's result as it is kept between runs: per family, the label values of each
//! sample as numbers into the query's string table (each distinct string stored once)
//! and one `f64` per sample.
//!
//! A sample costs `4 × labels + 8` bytes plus its distinct strings, instead of a vector
//! of owned name/value pairs: 100,000 series with two labels hold about 2 MB, not 200.
//! The table is immutable once built ([`SeriesBuilder::finish`]); scrapes read it through
//! the exposition encoder (`exporter::encode`) and never copy it.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::exporter::family::{Family, Kind, Labels};

/// The distinct strings of one table, each stored once.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Strings {
    text: String,
    /// End of string `i` in `text`; it starts where `i - 1` ends.
    ends: Vec<u32>,
}

impl Strings {
    /// String `id`; empty for an unknown id.
    pub fn get(&self, id: u32) -> &str {
        let id = id as usize;
        let end = self.ends.get(id).map_or(0, |&e| e as usize);
        let start = match id.checked_sub(1) {
            Some(before) => self.ends.get(before).map_or(0, |&e| e as usize),
            None => 0,
        };
        self.text.get(start..end).unwrap_or_default()
    }

    fn push(&mut self, s: &str) -> Option<u32> {
        let end = u32::try_from(self.text.len() + s.len()).ok()?;
        let id = u32::try_from(self.ends.len()).ok()?;
        self.text.push_str(s);
        self.ends.push(end);
        Some(id)
    }

    /// Bytes held (text and offsets).
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 4
    }
}

/// One metric of a query: its samples' label ids and values.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesFamily {
    /// For counters without `_total` (the encoder appends it).
    pub name: String,
    pub help: String,
    pub kind: Kind,
    /// The label columns, in the order each sample's ids follow.
    pub label_names: Vec<String>,
    /// Constant labels, written after the row labels of every sample.
    pub constant: Vec<(String, String)>,
    /// `label_names.len()` string ids per sample.
    labels: Vec<u32>,
    values: Vec<f64>,
}

impl SeriesFamily {
    pub fn new(name: String, help: String, kind: Kind, label_names: Vec<String>) -> Self {
        Self {
            name,
            help,
            kind,
            label_names,
            constant: Vec::new(),
            labels: Vec::new(),
            values: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Sample `i`'s label ids (in `label_names` order) and value.
    pub fn sample(&self, i: usize) -> Option<(&[u32], f64)> {
        let width = self.label_names.len();
        let value = *self.values.get(i)?;
        let ids = self.labels.get(i * width..(i + 1) * width)?;
        Some((ids, value))
    }

    /// Every sample's label ids and value, in result order.
    pub fn samples(&self) -> impl Iterator<Item = (&[u32], f64)> + '_ {
        (0..self.len()).filter_map(|i| self.sample(i))
    }
}

/// The result of one query run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SeriesTable {
    pub strings: Strings,
    pub families: Vec<SeriesFamily>,
}

impl SeriesTable {
    /// Samples in all families.
    pub fn series(&self) -> usize {
        self.families.iter().map(SeriesFamily::len).sum()
    }

    /// Sample `i` of `family` as label pairs (row labels, then constants).
    pub fn labels_of(&self, family: &SeriesFamily, ids: &[u32]) -> Labels {
        family
            .label_names
            .iter()
            .zip(ids)
            .map(|(name, &id)| (name.clone().into(), self.strings.get(id).to_owned()))
            .chain(
                family
                    .constant
                    .iter()
                    .map(|(k, v)| (k.clone().into(), v.clone())),
            )
            .collect()
    }

    /// The same samples in the general metric model (for `lookout query` and tests; a
    /// large result costs much more this way).
    pub fn to_families(&self) -> Vec<Family> {
        self.families
            .iter()
            .map(|family| Family {
                name: family.name.clone().into(),
                help: family.help.clone().into(),
                kind: family.kind,
                samples: family
                    .samples()
                    .map(|(ids, value)| crate::exporter::family::Sample {
                        labels: self.labels_of(family, ids),
                        value,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Approximate heap bytes the table holds.
    pub fn heap_bytes(&self) -> usize {
        self.strings.heap_bytes()
            + self
                .families
                .iter()
                .map(|f| f.labels.capacity() * 4 + f.values.capacity() * 8)
                .sum::<usize>()
    }
}

/// Why a sample was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its family already has a sample with these label values.
    Duplicate,
    /// The string table is full (4 GiB of label text).
    Full,
}

/// Builds a [`SeriesTable`] sample by sample, interning label values and refusing
/// repeated label sets.
#[derive(Debug)]
pub struct SeriesBuilder {
    table: SeriesTable,
    hasher: std::collections::hash_map::RandomState,
    /// String ids by content.
    interned: HashTable<u32>,
    /// Per family, sample indices by label ids.
    seen: Vec<HashTable<u32>>,
    ids: Vec<u32>,
}

impl SeriesBuilder {
    pub fn new(families: Vec<SeriesFamily>) -> Self {
        let seen = families.iter().map(|_| HashTable::new()).collect();
        Self {
            table: SeriesTable {
                strings: Strings::default(),
                families,
            },
            hasher: std::collections::hash_map::RandomState::new(),
            interned: HashTable::new(),
            seen,
            ids: Vec::new(),
        }
    }

    /// Whether `family` already has a sample with these label values.
    pub fn contains<S: AsRef<str>>(&self, family: usize, values: &[S]) -> bool {
        let (Some(target), Some(seen)) = (self.table.families.get(family), self.seen.get(family))
        else {
            return false;
        };
        let strings = &self.table.strings;
        let mut ids = Vec::with_capacity(values.len());
        for value in values {
            let value = value.as_ref();
            let hash = self.hasher.hash_one(value);
            match self.interned.find(hash, |&id| strings.get(id) == value) {
                Some(&id) => ids.push(id),
                // A string never seen cannot be part of a known label set.
                None => return false,
            }
        }
        let hash = self.hasher.hash_one(&ids);
        seen.find(hash, |&i| {
            target.sample(i as usize).is_some_and(|(s, _)| s == ids)
        })
        .is_some()
    }

    /// Adds a sample to `family` unless its label values repeat an earlier sample's.
    pub fn push<S: AsRef<str>>(
        &mut self,
        family: usize,
        values: &[S],
        value: f64,
    ) -> Result<(), Refused> {
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        for label in values {
            ids.push(self.intern(label.as_ref()).ok_or(Refused::Full)?);
        }
        let result = self.add(family, &ids, value);
        self.ids = ids;
        result
    }

    fn add(&mut self, family: usize, ids: &[u32], value: f64) -> Result<(), Refused> {
        let (Some(target), Some(seen)) = (
            self.table.families.get_mut(family),
            self.seen.get_mut(family),
        ) else {
            return Ok(());
        };
        let hash = self.hasher.hash_one(ids);
        if seen
            .find(hash, |&i| {
                target.sample(i as usize).is_some_and(|(s, _)| s == ids)
            })
            .is_some()
        {
            return Err(Refused::Duplicate);
        }
        let index = u32::try_from(target.values.len()).map_err(|_| Refused::Full)?;
        target.labels.extend_from_slice(ids);
        target.values.push(value);
        let (families, hasher) = (&self.table.families, &self.hasher);
        seen.insert_unique(hash, index, |&i| {
            let (s, _) = families
                .get(family)
                .and_then(|f| f.sample(i as usize))
                .unwrap_or((&[], 0.0));
            hasher.hash_one(s)
        });
        Ok(())
    }

    fn intern(&mut self, value: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(value);
        let strings = &self.table.strings;
        if let Some(&id) = self.interned.find(hash, |&id| strings.get(id) == value) {
            return Some(id);
        }
        let id = self.table.strings.push(value)?;
        let (strings, hasher) = (&self.table.strings, &self.hasher);
        self.interned
            .insert_unique(hash, id, |&id| hasher.hash_one(strings.get(id)));
        Some(id)
    }

    /// The table, its buffers trimmed to their contents.
    pub fn finish(self) -> SeriesTable {
        let mut table = self.table;
        table.strings.text.shrink_to_fit();
        table.strings.ends.shrink_to_fit();
        for family in &mut table.families {
            family.labels.shrink_to_fit();
            family.values.shrink_to_fit();
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> SeriesBuilder {
        let mut a = SeriesFamily::new(
            "a".into(),
            "A.".into(),
            Kind::Gauge,
            vec!["k".into(), "s".into()],
        );
        a.constant = vec![("env".into(), "prod".into())];
        let b = SeriesFamily::new("b".into(), "B.".into(), Kind::Counter, vec![]);
        SeriesBuilder::new(vec![a, b])
    }

    #[test]
    fn label_values_are_stored_once_and_read_back() {
        let mut builder = builder();
        builder.push(0, &["充值", "ok"], 1.5).unwrap();
        builder.push(0, &["提现", "ok"], 2.0).unwrap();
        builder.push(0, &["充值", "failed"], 3.0).unwrap();
        builder.push(1, &[] as &[&str], 7.0).unwrap();
        let table = builder.finish();
        assert_eq!(table.strings.ends.len(), 4, "充值, ok, 提现, failed");
        assert_eq!(table.series(), 4);
        let a = &table.families[0];
        let samples: Vec<(Vec<&str>, f64)> = a
            .samples()
            .map(|(ids, v)| (ids.iter().map(|&id| table.strings.get(id)).collect(), v))
            .collect();
        assert_eq!(
            samples,
            vec![
                (vec!["充值", "ok"], 1.5),
                (vec!["提现", "ok"], 2.0),
                (vec!["充值", "failed"], 3.0)
            ]
        );
        let families = table.to_families();
        assert_eq!(
            families[0].samples[2].labels,
            vec![
                ("k".into(), "充值".to_owned()),
                ("s".into(), "failed".to_owned()),
                ("env".into(), "prod".to_owned())
            ]
        );
        assert_eq!(families[1].samples[0].value, 7.0);
        assert_eq!(families[1].samples[0].labels, Vec::new());
    }

    #[test]
    fn a_repeated_label_set_is_refused_per_family() {
        let mut builder = builder();
        builder.push(0, &["x", "y"], 1.0).unwrap();
        assert!(builder.contains(0, &["x", "y"]));
        assert!(!builder.contains(0, &["y", "x"]));
        assert!(!builder.contains(0, &["x", "new"]));
        assert_eq!(builder.push(0, &["x", "y"], 2.0), Err(Refused::Duplicate));
        builder.push(0, &["y", "x"], 3.0).unwrap();
        builder.push(1, &[] as &[&str], 1.0).unwrap();
        assert_eq!(
            builder.push(1, &[] as &[&str], 2.0),
            Err(Refused::Duplicate)
        );
        let table = builder.finish();
        assert_eq!(table.families[0].len(), 2);
        assert_eq!(table.families[0].sample(0).map(|(_, v)| v), Some(1.0));
    }

    #[test]
    fn many_distinct_series_stay_small() {
        let mut builder = builder();
        for i in 0..100_000 {
            let kind = ["deposit", "withdraw", "transfer"][i % 3];
            builder
                .push(0, &[format!("w{i}").as_str(), kind], i as f64)
                .unwrap();
        }
        let table = builder.finish();
        assert_eq!(table.series(), 100_000);
        // 100,003 strings (~590 KB of text, 400 KB of offsets) and 100,000 × (2 × 4 + 8).
        assert!(table.heap_bytes() < 3_000_000, "{}", table.heap_bytes());
    }
}
