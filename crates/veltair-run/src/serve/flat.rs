//! The `data` of a request input, streamed straight from the JSON parser into one flat vector of
//! 8-byte numbers (lists nested to any depth are flattened in row-major order), never into a
//! JSON tree: a body of N numbers costs 8·N bytes, not the ~32·N of `serde_json::Value`.

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// The leaves of a `data` list, kept as integers while every leaf is one.
#[derive(Debug, PartialEq)]
pub(crate) enum Flat {
    Ints(Vec<i64>),
    /// Every leaf as a float, and the first leaf that was not an INT64 integer.
    Floats {
        values: Vec<f64>,
        first_non_integer: f64,
    },
}

impl Flat {
    pub(crate) fn len(&self) -> usize {
        match self {
            Flat::Ints(values) => values.len(),
            Flat::Floats { values, .. } => values.len(),
        }
    }

    fn push_int(&mut self, v: i64) {
        match self {
            Flat::Ints(values) => values.push(v),
            Flat::Floats { values, .. } => values.push(v as f64),
        }
    }

    fn push_float(&mut self, v: f64) {
        match self {
            Flat::Ints(ints) => {
                let mut values: Vec<f64> = ints.iter().map(|&i| i as f64).collect();
                values.push(v);
                *self = Flat::Floats { values, first_non_integer: v };
            }
            Flat::Floats { values, .. } => values.push(v),
        }
    }
}

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Flat, D::Error> {
        let mut flat = Flat::Ints(Vec::new());
        deserializer.deserialize_seq(Leaves(&mut flat))?;
        Ok(flat)
    }
}

/// Appends every number under one JSON value (a number, or a list nested to any depth; the
/// parser's recursion limit bounds the depth) to a [`Flat`].
struct Leaves<'a>(&'a mut Flat);

impl<'de> DeserializeSeed<'de> for Leaves<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Leaves<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of numbers (nested lists allowed)")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push_int(v);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(v) => self.0.push_int(v),
            Err(_) => self.0.push_float(v as f64),
        }
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.push_float(v);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let flat = self.0;
        while seq.next_element_seed(Leaves(&mut *flat))?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(json: &str) -> Result<Flat, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn data_flattens_to_integers_until_a_float_appears() {
        assert_eq!(flat("[[1,-2],[],[[3]]]").unwrap(), Flat::Ints(vec![1, -2, 3]));
        assert_eq!(flat("[1,2.5,3]").unwrap(), Flat::Floats { values: vec![1.0, 2.5, 3.0], first_non_integer: 2.5 });
        let big = flat("[18446744073709551615]").unwrap();
        assert!(matches!(big, Flat::Floats { first_non_integer, .. } if first_non_integer == 18446744073709551615.0));
        for bad in ["1", "{}", "[1,\"2\"]", "[true]", "[null]", "[[1],{}]"] {
            assert!(flat(bad).is_err(), "{bad}");
        }
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(flat(&deep).unwrap_err().to_string().contains("recursion limit"));
    }
}
