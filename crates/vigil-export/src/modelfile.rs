//! [`modelfile`]: an Ollama Modelfile for an exported GGUF — `FROM`, a Go `TEMPLATE`
//! equivalent to the model's Jinja chat template, `PARAMETER temperature / num_ctx / stop`
//! and `SYSTEM`.
//!
//! Ollama renders Go templates, not Jinja, so the template is chosen by recognising the
//! chat format the Jinja template produces (ChatML, Gemma turns, Llama 3 headers) rather
//! than translated; an unknown format is an error naming what was looked for.

use crate::error::{ExportError, Result};
use std::path::Path;

/// Chat formats vigil can express as an Ollama template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    ChatMl,
    Gemma,
    Llama3,
}

impl ChatFormat {
    /// Recognises the format from a Jinja chat template's turn markers.
    pub fn detect(jinja: &str) -> Option<Self> {
        if jinja.contains("<|im_start|>") {
            Some(ChatFormat::ChatMl)
        } else if jinja.contains("<start_of_turn>") {
            Some(ChatFormat::Gemma)
        } else if jinja.contains("<|start_header_id|>") {
            Some(ChatFormat::Llama3)
        } else {
            None
        }
    }

    /// The Go template; Ollama puts `SYSTEM` into `.Messages` as a system message.
    pub fn ollama_template(self) -> &'static str {
        match self {
            ChatFormat::ChatMl => concat!(
                "{{- range .Messages }}<|im_start|>{{ .Role }}\n",
                "{{ .Content }}<|im_end|>\n",
                "{{ end }}<|im_start|>assistant\n"
            ),
            // Gemma has no system role: its Jinja template folds the system text into the
            // first user turn, which this does by giving every non-assistant turn to "user".
            ChatFormat::Gemma => concat!(
                "{{- range .Messages }}<start_of_turn>",
                "{{ if eq .Role \"assistant\" }}model{{ else }}user{{ end }}\n",
                "{{ .Content }}<end_of_turn>\n",
                "{{ end }}<start_of_turn>model\n"
            ),
            ChatFormat::Llama3 => concat!(
                "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n",
                "{{ .Content }}<|eot_id|>\n",
                "{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
        }
    }

    /// Strings that end an assistant turn.
    pub fn stops(self) -> &'static [&'static str] {
        match self {
            ChatFormat::ChatMl => &["<|im_end|>", "<|im_start|>"],
            ChatFormat::Gemma => &["<end_of_turn>"],
            ChatFormat::Llama3 => &["<|eot_id|>"],
        }
    }
}

/// Settings of the Modelfile beyond what the GGUF says.
#[derive(Debug, Clone)]
pub struct ModelfileOptions {
    /// The `FROM` line: usually the exported GGUF's path, relative to the Modelfile.
    pub from: String,
    pub system: Option<String>,
    pub temperature: f32,
    /// Context window; `None` takes the model's training context, capped at 8192.
    pub num_ctx: Option<u32>,
}

/// The Modelfile text for the GGUF at `gguf`.
pub fn modelfile(gguf: &Path, options: &ModelfileOptions) -> Result<String> {
    let source = crate::gguf_export::GgufSource::open(gguf)?;
    let meta = &source.content.metadata;
    let jinja = meta
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .ok_or_else(|| {
            ExportError::file(gguf, "no tokenizer.chat_template in the GGUF metadata")
        })?;
    let format = ChatFormat::detect(jinja).ok_or_else(|| {
        ExportError::file(
            gguf,
            "chat template not recognised (looked for ChatML <|im_start|>, Gemma <start_of_turn>, Llama 3 <|start_header_id|>)",
        )
    })?;
    let arch = source.architecture()?;
    let trained_ctx = meta.get(&format!("{arch}.context_length")).and_then(|v| {
        v.to_u32()
            .ok()
            .or_else(|| v.to_u64().ok().map(|n| n.min(u32::MAX as u64) as u32))
    });
    let num_ctx = options
        .num_ctx
        .or(trained_ctx.map(|c| c.min(8192)))
        .unwrap_or(2048);
    render(format, options, num_ctx)
}

/// The Modelfile for a known chat format (no file needed).
pub fn render(format: ChatFormat, options: &ModelfileOptions, num_ctx: u32) -> Result<String> {
    for (what, text) in [
        ("FROM", Some(options.from.as_str())),
        ("SYSTEM", options.system.as_deref()),
    ] {
        if text.is_some_and(|t| t.contains("\"\"\"")) {
            return Err(ExportError::Invalid(format!(
                "{what} text may not contain \"\"\" (Ollama's quote)"
            )));
        }
    }
    if !options.temperature.is_finite() || options.temperature < 0.0 {
        return Err(ExportError::Invalid(format!(
            "temperature {} is not a non-negative number",
            options.temperature
        )));
    }
    let mut out = String::new();
    let from = if options.from.contains(char::is_whitespace) {
        format!("\"{}\"", options.from)
    } else {
        options.from.clone()
    };
    out.push_str(&format!("FROM {from}\n\n"));
    out.push_str(&format!(
        "TEMPLATE \"\"\"{}\"\"\"\n\n",
        format.ollama_template()
    ));
    out.push_str(&format!("PARAMETER temperature {}\n", options.temperature));
    out.push_str(&format!("PARAMETER num_ctx {num_ctx}\n"));
    for stop in format.stops() {
        out.push_str(&format!("PARAMETER stop \"{stop}\"\n"));
    }
    if let Some(system) = &options.system {
        out.push_str(&format!("\nSYSTEM \"\"\"{system}\"\"\"\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_modelfile_lines() {
        let opts = ModelfileOptions {
            from: "./model.q4_k_m.gguf".into(),
            system: Some("You are a security analyst.".into()),
            temperature: 0.2,
            num_ctx: None,
        };
        let text = render(ChatFormat::ChatMl, &opts, 4096).unwrap();
        assert!(text.starts_with("FROM ./model.q4_k_m.gguf\n"));
        assert!(text.contains("PARAMETER temperature 0.2\n"));
        assert!(text.contains("PARAMETER num_ctx 4096\n"));
        assert!(text.contains("PARAMETER stop \"<|im_end|>\"\n"));
        assert!(text.contains("SYSTEM \"\"\"You are a security analyst.\"\"\""));
        assert!(text.contains("<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>"));
    }

    #[test]
    fn formats_are_recognised_from_jinja() {
        assert_eq!(
            ChatFormat::detect("{{'<|im_start|>' + m.role}}"),
            Some(ChatFormat::ChatMl)
        );
        assert_eq!(
            ChatFormat::detect("{{ '<start_of_turn>' + role }}"),
            Some(ChatFormat::Gemma)
        );
        assert_eq!(ChatFormat::detect("[INST] {{ m }} [/INST]"), None);
    }

    #[test]
    fn triple_quotes_in_system_are_refused() {
        let opts = ModelfileOptions {
            from: "m.gguf".into(),
            system: Some("a \"\"\" b".into()),
            temperature: 0.7,
            num_ctx: Some(1),
        };
        assert!(render(ChatFormat::Gemma, &opts, 1).is_err());
    }
}
