//! Typed, checked access to GGUF metadata. Every accessor returns an error
//! naming the key and the type it found instead of panicking, because model
//! files come from anywhere.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;

use crate::error::{Error, Result};

pub(crate) struct Meta<'a>(pub(crate) &'a HashMap<String, Value>);

fn type_name(v: &Value) -> String {
    match v {
        Value::Array(items) => match items.first() {
            Some(first) => format!("array of {}", type_name(first)),
            None => "empty array".to_string(),
        },
        other => format!("{:?}", other.value_type()).to_lowercase(),
    }
}

fn wrong(key: &str, expected: &'static str, v: &Value) -> Error {
    Error::WrongType {
        key: key.to_string(),
        expected,
        found: type_name(v),
    }
}

/// Any integer-typed value that fits in a u32 (writers disagree on the
/// integer width used for ids).
fn as_u32(v: &Value) -> Option<u32> {
    let wide: i128 = match *v {
        Value::U8(x) => x.into(),
        Value::I8(x) => x.into(),
        Value::U16(x) => x.into(),
        Value::I16(x) => x.into(),
        Value::U32(x) => x.into(),
        Value::I32(x) => x.into(),
        Value::U64(x) => x.into(),
        Value::I64(x) => x.into(),
        _ => return None,
    };
    u32::try_from(wide).ok()
}

impl<'a> Meta<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key)
    }

    pub(crate) fn require<T>(&self, key: &str, v: Result<Option<T>>) -> Result<T> {
        v?.ok_or_else(|| Error::MissingKey(key.to_string()))
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(wrong(key, "string", v)),
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(wrong(key, "bool", v)),
        }
    }

    pub(crate) fn u32(&self, key: &str) -> Result<Option<u32>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => as_u32(v)
                .map(Some)
                .ok_or_else(|| wrong(key, "non-negative 32-bit integer", v)),
        }
    }

    fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(v) => Err(wrong(key, "array", v)),
        }
    }

    pub(crate) fn strings(&self, key: &str) -> Result<Option<Vec<&'a str>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                other => Err(wrong(key, "array of string", other)),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Scores are f32 in every converter we know, but llama.cpp also accepts
    /// i32, so we do too.
    pub(crate) fn scores(&self, key: &str) -> Result<Option<Vec<f32>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match *v {
                Value::F32(x) => Ok(x),
                Value::I32(x) => Ok(x as f32),
                ref other => Err(wrong(key, "array of f32", other)),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    pub(crate) fn i32s(&self, key: &str) -> Result<Option<Vec<i32>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match *v {
                Value::I32(x) => Ok(x),
                ref other => Err(wrong(key, "array of i32", other)),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}
