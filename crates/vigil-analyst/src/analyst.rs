//! [`Analyst`]: a model with its bundle's adapters and heads, answering for one subject at a
//! time with the dual head, or scoring many at once for evaluation.

use crate::bundle::{adapter_fingerprint, model_fingerprint, Bundle};
use crate::constraint::{JsonSchemaConstraint, TokenVocab};
use crate::error::{AnalystError, Result};
use crate::subject::{complete, Analysis, PromptForm, Subject};
use candle_core::{Device, Tensor};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use vigil_data::prompt::{self, Messages, VERDICT_CLEAN, VERDICT_VULNERABLE};
use vigil_head::{FeatureCache, FeatureSpec, HeadFile, HiddenStatePool};
use vigil_model::decoder::{left_padded_batch, right_padded_batch};
use vigil_model::{
    ForwardOptions, GenerateRequest, Generator, LogitsFor, Model, PromptPrefix, SamplingParams,
    TokenConstraint,
};
use vigil_train::ChatEncoder;

/// When to write the analysis text after the verdict line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Explain {
    /// Verdict line only (fastest; what a scan of clean code needs).
    Never,
    /// Reason, fix and fixed code for vulnerable subjects only.
    #[default]
    Vulnerable,
    Always,
}

/// Test-time control of one analysis.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    pub form: PromptForm,
    pub explain: Explain,
    /// End-of-sequence is forbidden before this many answer tokens.
    pub min_tokens: usize,
    /// The answer is cut here (the verdict line included).
    pub max_tokens: usize,
    /// Self-consistency: generate this many answers and vote (used when there is no head,
    /// or with `use_head = false`).
    pub samples: usize,
    pub temperature: f32,
    pub seed: u64,
    /// Decide with the bundle's head when it has one for the task.
    pub use_head: bool,
    /// Penalty on the last 64 tokens' repeats (1.0 = off): a small model fine-tuned
    /// briefly otherwise loops on one sentence of its reason.
    pub repetition_penalty: f32,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            form: PromptForm::Engineered,
            explain: Explain::Vulnerable,
            min_tokens: 0,
            max_tokens: 256,
            samples: 1,
            temperature: 0.7,
            seed: 0,
            use_head: true,
            repetition_penalty: 1.15,
        }
    }
}

/// A model with adapters and heads, ready to analyse.
pub struct Analyst {
    pub model: Model,
    pub bundle: Option<Bundle>,
    pub model_id: String,
    /// task → adapter name loaded into the model.
    adapters: BTreeMap<String, String>,
    /// (task, target) → head.
    heads: BTreeMap<(String, String), HeadFile>,
    vocab: Arc<TokenVocab>,
    /// Prompt starts already run (a task's system prompt, per adapter and hidden-state
    /// set), newest last; see [`Analyst::shared_prefix`].
    prefixes: Mutex<Vec<Arc<PromptPrefix>>>,
}

/// Prefixes kept: tasks × adapters × hidden-state sets in use at once.
const MAX_PREFIXES: usize = 8;

impl Analyst {
    /// The base model alone (no adapters, no heads).
    pub fn base(model: Model, model_id: String) -> Result<Analyst> {
        let vocab = Arc::new(TokenVocab::of(&model.tokenizer, model.config().vocab_size));
        Ok(Analyst {
            model,
            bundle: None,
            model_id,
            adapters: BTreeMap::new(),
            heads: BTreeMap::new(),
            vocab,
            prefixes: Mutex::new(Vec::new()),
        })
    }

    /// A bundle on its base model (checked against the bundle's hash).
    pub fn open(bundle: Bundle, model_path: &Path) -> Result<Analyst> {
        bundle.check_model(model_path)?;
        let model = Model::load(model_path)?;
        let mut a = Analyst::base(model, bundle.manifest.base_model.sha256.clone())?;
        for ad in &bundle.manifest.adapters {
            a.load_adapter(&ad.task, &ad.name, &bundle.dir.join(&ad.path))?;
        }
        for h in &bundle.manifest.heads {
            let dir = bundle.dir.join(&h.path);
            let head = HeadFile::load(&dir)?;
            a.add_head(&h.task, &h.target, head)?;
        }
        let now = crate::bundle::prompt_hashes();
        for (task, hash) in &bundle.manifest.prompts {
            if now.get(task) != Some(hash) {
                tracing::warn!(
                    "bundle `{}` was trained with other {task} prompts than this vigil uses; \
                     retrain it for best results",
                    bundle.manifest.name
                );
            }
        }
        a.bundle = Some(bundle);
        Ok(a)
    }

    /// Loads a PEFT adapter directory as the adapter of `task`.
    pub fn load_adapter(&mut self, task: &str, name: &str, dir: &Path) -> Result<()> {
        if !self.model.decoder.has_adapter(name) {
            self.model.decoder.load_lora(name, dir)?;
            self.prefixes.get_mut().expect("no lock is held").clear();
        }
        self.adapters.insert(task.to_string(), name.to_string());
        Ok(())
    }

    pub fn add_head(&mut self, task: &str, target: &str, head: HeadFile) -> Result<()> {
        if head.meta.input_dim != self.model.config().hidden_size {
            return Err(AnalystError::Invalid(format!(
                "head `{}` reads {} features; this model's hidden size is {}",
                head.meta.name,
                head.meta.input_dim,
                self.model.config().hidden_size
            )));
        }
        if let Some(a) = &head.meta.features.adapter {
            if !self.model.decoder.has_adapter(a) {
                return Err(AnalystError::Invalid(format!(
                    "head `{}` was trained on features of adapter `{a}`, which is not loaded",
                    head.meta.name
                )));
            }
        }
        self.heads
            .insert((task.to_string(), target.to_string()), head);
        Ok(())
    }

    pub fn adapter_for(&self, task: &str) -> Option<&str> {
        self.adapters.get(task).map(|s| s.as_str())
    }

    pub fn head(&self, task: &str, target: &str) -> Option<&HeadFile> {
        self.heads.get(&(task.to_string(), target.to_string()))
    }

    /// What decides this analyst's answers: the model's hash and the bundle's manifest
    /// (which names the adapters and heads and changes whenever they are rebuilt), or the
    /// adapters and heads loaded by hand.
    pub fn identity(&self) -> String {
        let mut s = self.model_id.clone();
        match &self.bundle {
            Some(b) => s.push_str(&serde_json::to_string(&b.manifest).unwrap_or_default()),
            None => {
                for (task, name) in &self.adapters {
                    s.push_str(&format!("|adapter {task}={name}"));
                }
                for ((task, target), h) in &self.heads {
                    s.push_str(&format!(
                        "|head {task}/{target}={}",
                        serde_json::to_string(&h.meta).unwrap_or_default()
                    ));
                }
            }
        }
        s
    }

    /// The identity of an adapter directory (for feature-cache keys).
    pub fn adapter_id(dir: &Path) -> Result<String> {
        adapter_fingerprint(dir)
    }

    /// The identity of a model file (for bundles and feature-cache keys).
    pub fn fingerprint(path: &Path) -> Result<String> {
        model_fingerprint(path)
    }

    fn encoder(&self) -> Result<ChatEncoder<'_>> {
        Ok(ChatEncoder::for_model(&self.model.tokenizer)?)
    }

    /// The prompt tokens of `m` followed by `answer_prefix`.
    pub fn prompt_ids(&self, m: &Messages, answer_prefix: &str) -> Result<Vec<u32>> {
        Ok(self.encoder()?.encode_prompt(m, answer_prefix)?)
    }

    /// Analyses one subject: with the task's head when there is one (one prefill feeds
    /// the head and the answer, whose verdict line is constrained to the head's decision),
    /// otherwise by generation with self-consistency over `opts.samples` answers.
    pub fn analyze(&self, subject: &Subject, opts: &AnalyzeOptions) -> Result<Analysis> {
        let start = Instant::now();
        let task = subject.task();
        let messages = subject.messages(opts.form);
        let ids = self.prompt_ids(&messages, "")?;
        let ctx = self.model.config().max_position;
        if ids.len() + opts.max_tokens > ctx {
            return Err(AnalystError::Invalid(format!(
                "the prompt is {} tokens; with {} answer tokens it exceeds the model's context \
                 of {ctx}; split the unit or lower --max-tokens",
                ids.len(),
                opts.max_tokens
            )));
        }
        let head = self.head(task, "verdict").filter(|_| opts.use_head);
        let system = messages.system.as_str();
        let mut a = match head {
            Some(h) => self.analyze_with_head(task, system, ids, h, opts)?,
            None => self.analyze_by_vote(task, system, ids, opts)?,
        };
        a.seconds = start.elapsed().as_secs_f64();
        Ok(a)
    }

    /// Analyses many subjects: answers found in `cache` are reused, the rest run on `jobs`
    /// worker threads sharing this one model (each analysis is independent; the decoder's
    /// own matrix kernels are multi-threaded too, so more jobs than cores buys nothing).
    /// Results come back in the subjects' order; one failure does not stop the others.
    /// `progress(done, from_cache)` is called after each subject.
    pub fn analyze_all(
        &self,
        subjects: &[Subject],
        opts: &AnalyzeOptions,
        cache: Option<&crate::AnalysisCache>,
        jobs: usize,
        progress: &(dyn Fn(usize, bool) + Sync),
    ) -> Vec<Result<Analysis>> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Mutex;
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<Analysis>>>> =
            Mutex::new((0..subjects.len()).map(|_| None).collect());
        let work = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(subject) = subjects.get(i) else {
                break;
            };
            let key = cache.map(|_| crate::AnalysisCache::key(self, opts, subject));
            let hit = cache.zip(key.as_deref()).and_then(|(c, k)| c.get(k));
            let from_cache = hit.is_some();
            let r = match hit {
                Some(a) => Ok(a),
                None => {
                    let r = self.analyze(subject, opts);
                    if let (Ok(a), Some(c), Some(k)) = (&r, cache, key.as_deref()) {
                        if let Err(e) = c.put(k, a) {
                            tracing::warn!("analysis cache: {e}");
                        }
                    }
                    r
                }
            };
            results.lock().expect("no worker panics while holding it")[i] = Some(r);
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, from_cache);
        };
        let jobs = jobs.clamp(1, subjects.len().max(1));
        std::thread::scope(|s| {
            for _ in 1..jobs {
                s.spawn(work);
            }
            work();
        });
        results
            .into_inner()
            .expect("workers finished")
            .into_iter()
            .map(|r| r.expect("every subject was analysed"))
            .collect()
    }

    fn request(&self, task: &str, ids: Vec<u32>, opts: &AnalyzeOptions) -> GenerateRequest {
        let mut req = GenerateRequest::new(ids, opts.max_tokens);
        req.min_tokens = opts.min_tokens;
        req.adapter = self.adapter_for(task).map(str::to_string);
        req.sampling = SamplingParams {
            temperature: 0.0,
            seed: opts.seed,
            repetition_penalty: opts.repetition_penalty,
            repeat_last_n: 64,
            ..SamplingParams::default()
        };
        req
    }

    /// The run prefix `req` can continue: the chat template's start with `system`, up to
    /// where the user's text begins, the same for every subject of a task. It is run once
    /// per adapter and hidden-state set and then kept. `None` when the prompt does not
    /// start with it or it is too short to be worth a fork; the prompt is then prefilled
    /// whole, with the same result.
    fn shared_prefix(
        &self,
        system: &str,
        req: &GenerateRequest,
    ) -> Result<Option<Arc<PromptPrefix>>> {
        let mut kept = self
            .prefixes
            .lock()
            .expect("no prefill panics while holding it");
        if let Some(p) = kept.iter().rev().find(|p| p.serves(req)) {
            return Ok(Some(p.clone()));
        }
        // Two prompts that differ from their user text's first character on share exactly
        // the template's start.
        let probe = |user: &str| {
            self.prompt_ids(
                &Messages {
                    system: system.to_string(),
                    user: user.to_string(),
                    assistant: String::new(),
                },
                "",
            )
        };
        let (a, b) = (probe("A")?, probe("B")?);
        let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let tokens = a[..common].to_vec();
        if common < vigil_model::MIN_SHARED_PREFIX
            || common >= req.prompt_ids.len()
            || !req.prompt_ids.starts_with(&tokens)
        {
            return Ok(None);
        }
        let p = Arc::new(PromptPrefix::new(
            &self.model.decoder,
            tokens,
            req.adapter.clone(),
            req.hidden_layers.clone(),
        )?);
        if kept.len() == MAX_PREFIXES {
            kept.remove(0);
        }
        kept.push(p.clone());
        Ok(Some(p))
    }

    fn analyze_with_head(
        &self,
        task: &str,
        system: &str,
        ids: Vec<u32>,
        head: &HeadFile,
        opts: &AnalyzeOptions,
    ) -> Result<Analysis> {
        let spec = &head.meta.features;
        let gen_adapter = self.adapter_for(task);
        if spec.adapter.as_deref() != gen_adapter {
            return Err(AnalystError::Invalid(format!(
                "head `{}` reads features with adapter {:?} but the {task} answer is generated \
                 with {:?}; they must match to share one prefill",
                head.meta.name, spec.adapter, gen_adapter
            )));
        }
        let mut req = self.request(task, ids, opts);
        req.hidden_layers = spec.layers.clone();
        req.prefix = self.shared_prefix(system, &req)?;
        let type_head = self.head(task, "vuln_type");
        let mut c = DualHeadConstraint {
            head,
            type_head,
            pooling: spec.pooling,
            vocab: self.vocab.clone(),
            explain: opts.explain,
            decision: None,
            json: None,
            free: false,
            error: None,
        };
        let gen = Generator::new(&self.model).generate_constrained(&req, &mut c, &mut |_| {})?;
        let st = &gen.stats;
        tracing::debug!(
            "{task}: prompt {} tokens ({} from the shared prefix), prefill {:.3} s, {} answer \
             tokens in {:.3} s",
            st.prompt_tokens,
            st.prefix_tokens,
            st.prefill_seconds,
            st.generated_tokens,
            st.decode_seconds
        );
        if let Some(e) = c.error {
            return Err(AnalystError::Invalid(e));
        }
        let d = c
            .decision
            .ok_or_else(|| AnalystError::Invalid("the head was not consulted".into()))?;
        let (line, body) = prompt::parse_verdict_line(&gen.text)
            .map(|(l, b)| (Some(l), b.to_string()))
            .unwrap_or((None, String::new()));
        let mut a = Analysis {
            vulnerable: d.vulnerable,
            confidence: if d.vulnerable { d.p } else { 1.0 - d.p },
            probability: Some(d.p),
            threshold: Some(head.meta.thresholds.chosen),
            decided_by: "head".into(),
            vuln_type: d
                .vuln_type
                .clone()
                .or_else(|| line.as_ref().and_then(|l| l.vuln_type.clone())),
            type_probability: d.type_p,
            cwe: line.as_ref().and_then(|l| l.cwe),
            owasp: None,
            severity: line.as_ref().and_then(|l| l.severity),
            reason: String::new(),
            fixed_code: None,
            text: gen.text.clone(),
            answer_tokens: gen.token_ids.len(),
            votes_vulnerable: 0,
            votes_total: 0,
            seconds: 0.0,
        };
        if !a.vulnerable {
            a.vuln_type = None;
            a.cwe = None;
            a.severity = None;
        }
        complete(&mut a, &body);
        if !a.vulnerable {
            a.owasp = None;
            a.severity = None;
            a.cwe = None;
        }
        Ok(a)
    }

    fn analyze_by_vote(
        &self,
        task: &str,
        system: &str,
        ids: Vec<u32>,
        opts: &AnalyzeOptions,
    ) -> Result<Analysis> {
        let n = opts.samples.max(1);
        let schema = generative_schema();
        let mut answers = Vec::with_capacity(n);
        let prefix = self.shared_prefix(system, &self.request(task, ids.clone(), opts))?;
        for i in 0..n {
            let mut req = self.request(task, ids.clone(), opts);
            req.prefix = prefix.clone();
            if n > 1 {
                req.sampling.temperature = opts.temperature;
                req.sampling.seed = opts.seed.wrapping_add(i as u64);
            }
            let mut c = VerdictLineThenFree {
                json: JsonSchemaConstraint::new(&schema, self.vocab.clone())?,
                explain: opts.explain,
                free: false,
            };
            let gen =
                Generator::new(&self.model).generate_constrained(&req, &mut c, &mut |_| {})?;
            answers.push(gen);
        }
        let parsed: Vec<_> = answers
            .iter()
            .map(|g| prompt::parse_verdict_line(&g.text))
            .collect();
        let votes = parsed
            .iter()
            .filter(|p| p.as_ref().is_some_and(|(l, _)| l.vulnerable))
            .count();
        // Majority; a tie goes to "not vulnerable" (precision first).
        let vulnerable = votes * 2 > n;
        let pick = parsed
            .iter()
            .position(|p| p.as_ref().is_some_and(|(l, _)| l.vulnerable == vulnerable))
            .unwrap_or(0);
        let (line, body) = match &parsed[pick] {
            Some((l, b)) => (Some(l.clone()), b.to_string()),
            None => (None, String::new()),
        };
        let share = if vulnerable { votes } else { n - votes };
        let mut a = Analysis {
            vulnerable,
            confidence: share as f32 / n as f32,
            probability: None,
            threshold: None,
            decided_by: "generation".into(),
            vuln_type: line.as_ref().and_then(|l| l.vuln_type.clone()),
            type_probability: None,
            cwe: line.as_ref().and_then(|l| l.cwe),
            owasp: None,
            severity: line.as_ref().and_then(|l| l.severity),
            reason: String::new(),
            fixed_code: None,
            text: answers[pick].text.clone(),
            answer_tokens: answers[pick].token_ids.len(),
            votes_vulnerable: if n > 1 { votes } else { 0 },
            votes_total: if n > 1 { n } else { 0 },
            seconds: 0.0,
        };
        complete(&mut a, &body);
        if !vulnerable {
            a.owasp = None;
            a.severity = None;
            a.cwe = None;
        }
        Ok(a)
    }

    /// The verdict-token probability of "vulnerable" for many prompts at once (the seed's
    /// SC variants): the answer is started with `{"verdict":"` and the model's next-token
    /// logits for "vulnerable" and "not vulnerable" are compared. Batched, no generation.
    pub fn verdict_token_probabilities(
        &self,
        prompts: &[Messages],
        adapter: Option<&str>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<f32>> {
        let enc = self.encoder()?;
        let mut rows = Vec::with_capacity(prompts.len());
        for m in prompts {
            let v = enc.encode_prompt(m, &format!("{{\"verdict\":\"{VERDICT_VULNERABLE}"))?;
            let c = enc.encode_prompt(m, &format!("{{\"verdict\":\"{VERDICT_CLEAN}"))?;
            let k = v.iter().zip(&c).take_while(|(a, b)| a == b).count();
            if k == 0 || k >= v.len() || k >= c.len() {
                return Err(AnalystError::Invalid(
                    "the two verdicts do not diverge at one token".into(),
                ));
            }
            rows.push((v[..k].to_vec(), v[k], c[k]));
        }
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| rows[i].0.len());
        let mut out = vec![0f32; rows.len()];
        let pad = self.model.tokenizer.eos_id().unwrap_or(0);
        let decoder = &self.model.decoder;
        // The system prompt all rows start with runs once; each batch continues it.
        let starts: Vec<Vec<u32>> = rows.iter().map(|r| r.0.clone()).collect();
        let prefix = PromptPrefix::common(decoder, &starts, adapter.map(str::to_string), vec![])?;
        let mut done = 0;
        for chunk in order.chunks(8) {
            let logits = Device::Cpu.with_context(|| -> Result<Tensor> {
                let mut opts = ForwardOptions {
                    logits: LogitsFor::Last,
                    hidden_layers: vec![],
                    adapter: adapter.map(str::to_string),
                };
                let o = match &prefix {
                    Some(p) => {
                        let skip = p.tokens().len();
                        let own: Vec<&[u32]> = chunk.iter().map(|&i| &starts[i][skip..]).collect();
                        let (input, lens) = right_padded_batch(&own, pad)?;
                        opts.logits = LogitsFor::At(lens.iter().map(|l| l - 1).collect());
                        decoder.forward(&input, &mut p.fork_rows(own.len())?, &opts)?
                    }
                    None => {
                        let toks: Vec<Vec<u32>> =
                            chunk.iter().map(|&i| starts[i].clone()).collect();
                        let (input, pads) = left_padded_batch(&toks, pad)?;
                        decoder.forward(&input, &mut decoder.new_state(pads), &opts)?
                    }
                };
                Ok(o.logits.expect("asked for logits"))
            })?;
            let l: Vec<Vec<f32>> = logits
                .squeeze(1)?
                .to_dtype(candle_core::DType::F32)?
                .to_vec2()?;
            for (row, &i) in l.iter().zip(chunk) {
                let (lv, lc) = (row[rows[i].1 as usize], row[rows[i].2 as usize]);
                out[i] = 1.0 / (1.0 + (lc - lv).exp());
            }
            done += chunk.len();
            progress(done);
        }
        Ok(out)
    }

    /// Head features of many prompts (cached), computed with `spec`'s adapter.
    pub fn features(
        &self,
        prompts: &[Messages],
        spec: &FeatureSpec,
        adapter_id: Option<&str>,
        cache: &FeatureCache,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<Vec<f32>>, usize)> {
        let enc = self.encoder()?;
        let ids = prompts
            .iter()
            .map(|m| enc.encode_prompt(m, ""))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let pad = self.model.tokenizer.eos_id().unwrap_or(0);
        let pool = HiddenStatePool::new(&self.model.decoder, pad);
        Ok(cache.features(&pool, &self.model_id, adapter_id, &ids, spec, progress)?)
    }
}

/// The schema of a generated verdict line when no head decides: either verdict.
fn generative_schema() -> serde_json::Value {
    let mut vuln = prompt::verdict_schema();
    let clean = serde_json::json!({
        "type": "object",
        "properties": {"verdict": {"const": VERDICT_CLEAN}},
        "required": ["verdict"],
        "additionalProperties": false,
    });
    vuln["properties"]["verdict"] = serde_json::json!({"const": VERDICT_VULNERABLE});
    serde_json::json!({"anyOf": [vuln, clean]})
}

/// What the head decided after the prefill.
#[derive(Debug, Clone)]
struct HeadDecision {
    vulnerable: bool,
    p: f32,
    vuln_type: Option<String>,
    type_p: Option<f32>,
}

/// Runs the heads on the prompt's hidden states, then constrains the verdict line to their
/// decision; afterwards the analysis text is free (or generation stops, per `explain`).
struct DualHeadConstraint<'a> {
    head: &'a HeadFile,
    type_head: Option<&'a HeadFile>,
    pooling: vigil_head::Pooling,
    vocab: Arc<TokenVocab>,
    explain: Explain,
    decision: Option<HeadDecision>,
    json: Option<JsonSchemaConstraint>,
    free: bool,
    error: Option<String>,
}

impl DualHeadConstraint<'_> {
    fn decide(&mut self, hidden: &[(usize, Tensor)]) -> Result<()> {
        let feats = HiddenStatePool::pool(hidden, &[0], self.pooling)?;
        let p = self.head.head.probabilities(&feats)?[0][1];
        let vulnerable = p >= self.head.meta.thresholds.chosen;
        let (mut vuln_type, mut type_p) = (None, None);
        if vulnerable {
            if let Some(th) = self.type_head {
                let probs = &th.head.probabilities(&feats)?[0];
                let (i, q) = probs
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .expect("a head has classes");
                vuln_type = th.meta.classes.get(i).cloned();
                type_p = Some(*q);
            }
        }
        let schema = if vulnerable {
            let mut s = prompt::verdict_schema();
            s["properties"]["verdict"] = serde_json::json!({"const": VERDICT_VULNERABLE});
            if let Some(t) = &vuln_type {
                s["properties"]["vulnerability"] = serde_json::json!({"const": t});
                if let Some(v) = vigil_taxonomy::Taxonomy::builtin().by_id(t) {
                    s["properties"]["cwe"] =
                        serde_json::json!({"const": format!("CWE-{}", v.cwe.id)});
                }
            }
            s
        } else {
            serde_json::json!({
                "type": "object",
                "properties": {"verdict": {"const": VERDICT_CLEAN}},
                "required": ["verdict"],
                "additionalProperties": false,
            })
        };
        self.json = Some(JsonSchemaConstraint::new(&schema, self.vocab.clone())?);
        self.decision = Some(HeadDecision {
            vulnerable,
            p,
            vuln_type,
            type_p,
        });
        Ok(())
    }

    fn explains(&self) -> bool {
        match self.explain {
            Explain::Never => false,
            Explain::Always => true,
            Explain::Vulnerable => self.decision.as_ref().is_some_and(|d| d.vulnerable),
        }
    }
}

impl TokenConstraint for DualHeadConstraint<'_> {
    fn on_prompt(&mut self, hidden: &[(usize, Tensor)]) -> std::result::Result<(), String> {
        self.decide(hidden).map_err(|e| {
            let m = e.to_string();
            self.error = Some(m.clone());
            m
        })
    }
    fn mask(&mut self, logits: &mut [f32]) {
        if self.free {
            return;
        }
        if let Some(j) = &mut self.json {
            j.mask(logits);
        }
    }
    fn accept(&mut self, token: u32) -> std::result::Result<(), String> {
        if self.free {
            return Ok(());
        }
        let j = self.json.as_mut().ok_or("the head was not consulted")?;
        j.accept(token)?;
        if j.is_complete() && self.explains() {
            self.free = true;
        }
        Ok(())
    }
    fn is_complete(&self) -> bool {
        !self.free && self.json.as_ref().is_some_and(|j| j.is_complete())
    }
}

/// A verdict line constrained to the generative schema, then free text.
struct VerdictLineThenFree {
    json: JsonSchemaConstraint,
    explain: Explain,
    free: bool,
}

impl TokenConstraint for VerdictLineThenFree {
    fn mask(&mut self, logits: &mut [f32]) {
        if !self.free {
            self.json.mask(logits);
        }
    }
    fn accept(&mut self, token: u32) -> std::result::Result<(), String> {
        if self.free {
            return Ok(());
        }
        self.json.accept(token)?;
        if self.json.is_complete() {
            let vulnerable = self.json.text().contains(VERDICT_VULNERABLE)
                && !self.json.text().contains(VERDICT_CLEAN);
            self.free = match self.explain {
                Explain::Never => false,
                Explain::Always => true,
                Explain::Vulnerable => vulnerable,
            };
        }
        Ok(())
    }
    fn is_complete(&self) -> bool {
        !self.free && self.json.is_complete()
    }
}
