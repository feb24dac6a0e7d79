//! A JSON value of bounded size for the small fields of a request (`id`, names, datatypes,
//! shapes, output lists): the parser refuses one of more than [`NODES`] nodes instead of
//! building it, so a body can make the server build a large tree nowhere (`data` is a `Flat`).

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::fmt;

/// Most nodes (scalars, lists, objects) one small field may hold.
const NODES: usize = 4096;

#[derive(Debug)]
pub(crate) struct Small(pub(crate) Value);

impl<'de> Deserialize<'de> for Small {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Small, D::Error> {
        let mut budget = NODES;
        Bounded(&mut budget).deserialize(deserializer).map(Small)
    }
}

/// Builds a [`Value`], spending one unit of the budget per node.
struct Bounded<'a>(&'a mut usize);

impl Bounded<'_> {
    fn spend<E: de::Error>(&mut self) -> Result<(), E> {
        *self.0 = self.0.checked_sub(1).ok_or_else(|| E::custom(format!("a field holds more than {NODES} values")))?;
        Ok(())
    }

    fn leaf<E: de::Error>(mut self, value: Value) -> Result<Value, E> {
        self.spend()?;
        Ok(value)
    }
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.leaf(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.leaf(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.leaf(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.leaf(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.leaf(Value::String(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.leaf(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Bounded(&mut *self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.spend()?;
            let value = map.next_value_seed(Bounded(&mut *self.0))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_parse_and_large_ones_are_refused() {
        let value: Small = serde_json::from_str(r#"[{"name":"y","n":[1,-2,2.5,true,null]}]"#).unwrap();
        assert_eq!(value.0, serde_json::json!([{"name": "y", "n": [1, -2, 2.5, true, null]}]));
        let fits = format!("[{}0]", "0,".repeat(NODES - 2));
        assert!(serde_json::from_str::<Small>(&fits).is_ok());
        let large = format!("[{}0]", "0,".repeat(NODES - 1));
        let error = serde_json::from_str::<Small>(&large).unwrap_err().to_string();
        assert!(error.contains("a field holds more than 4096 values"), "{error}");
    }
}
