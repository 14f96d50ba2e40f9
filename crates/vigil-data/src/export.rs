//! Exporters: ShareGPT JSONL, OpenAI-messages JSONL, Alpaca JSON, and our own JSONL. All chat
//! formats are rendered by [`crate::prompt::render`], so they say exactly what the trainer
//! and the scanner will say. Axolotl and TRL read the ShareGPT and OpenAI files directly.

use crate::error::{io_err, Result};
use crate::prompt::{self, Messages};
use crate::sample::Sample;
use crate::store::{Filter, Store};
use serde_json::json;
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    ShareGpt,
    OpenAi,
    Alpaca,
    Jsonl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        Some(match s.to_ascii_lowercase().as_str() {
            "sharegpt" => ExportFormat::ShareGpt,
            "openai" | "messages" => ExportFormat::OpenAi,
            "alpaca" => ExportFormat::Alpaca,
            "jsonl" | "vigil" => ExportFormat::Jsonl,
            _ => return None,
        })
    }
}

/// One sample as a JSON value in a format.
pub fn to_value(s: &Sample, format: ExportFormat) -> serde_json::Value {
    let Messages {
        system,
        user,
        assistant,
    } = prompt::render(s);
    match format {
        ExportFormat::ShareGpt => {
            let mut conv = Vec::new();
            if !system.is_empty() {
                conv.push(json!({"from": "system", "value": system}));
            }
            conv.push(json!({"from": "human", "value": user}));
            conv.push(json!({"from": "gpt", "value": assistant}));
            json!({ "conversations": conv })
        }
        ExportFormat::OpenAi => {
            let mut msgs = Vec::new();
            if !system.is_empty() {
                msgs.push(json!({"role": "system", "content": system}));
            }
            msgs.push(json!({"role": "user", "content": user}));
            msgs.push(json!({"role": "assistant", "content": assistant}));
            json!({ "messages": msgs })
        }
        ExportFormat::Alpaca => json!({"instruction": system, "input": user, "output": assistant}),
        ExportFormat::Jsonl => {
            let mut c = s.clone();
            c.id = None;
            serde_json::to_value(c).unwrap_or(serde_json::Value::Null)
        }
    }
}

/// Write the samples matching `filter` to `out`; returns how many were written.
/// Alpaca is one JSON array; the others are one JSON object per line.
pub fn export(
    store: &Store,
    filter: &Filter,
    format: ExportFormat,
    out: &Path,
    mut progress: impl FnMut(usize),
) -> Result<usize> {
    let file = std::fs::File::create(out).map_err(io_err(out))?;
    let mut w = BufWriter::new(file);
    let mut n = 0usize;
    let io = |e| io_err(out)(e);
    if format == ExportFormat::Alpaca {
        w.write_all(b"[\n").map_err(io)?;
    }
    store.for_each(filter, |s| {
        let v = to_value(&s, format);
        let line = serde_json::to_string(&v).map_err(|e| crate::DataError::Other(e.to_string()))?;
        if format == ExportFormat::Alpaca && n > 0 {
            w.write_all(b",\n").map_err(io_err(out))?;
        }
        w.write_all(line.as_bytes()).map_err(io_err(out))?;
        if format != ExportFormat::Alpaca {
            w.write_all(b"\n").map_err(io_err(out))?;
        }
        n += 1;
        if n.is_multiple_of(1000) {
            progress(n);
        }
        Ok(())
    })?;
    if format == ExportFormat::Alpaca {
        w.write_all(b"\n]\n").map_err(io_err(out))?;
    }
    w.flush().map_err(io_err(out))?;
    progress(n);
    Ok(n)
}
