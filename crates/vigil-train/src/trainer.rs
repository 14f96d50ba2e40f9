//! [`Trainer`]: the training loop.
//!
//! One optimizer step = `grad_accum_steps` micro-batches (fewer at the end of an epoch: a
//! step never spans two epochs) → gradients of the summed losses added up → divided by the
//! step's scored-token count (so the step minimises the mean loss per answer token, however
//! the tokens fall into micro-batches) → clipped to `max_grad_norm` → AdamW with the
//! schedule's learning rate. Then, when due: evaluation on the validation rows, early
//! stopping, a line of `metrics.jsonl`, a checkpoint, the loss charts.
//!
//! **Exact resume.** Everything a step depends on is either a pure function of the config
//! and step (learning rate, data order) or saved in the checkpoint (parameters, AdamW
//! moments and step, the dropout RNG, position in the epoch, early-stopping counters), and
//! evaluation draws from a copy of the RNG. So a run killed after a checkpoint and resumed
//! from it writes the same losses, bit for bit, as an uninterrupted run on the same machine
//! and thread count. A resume with another recipe or other data is refused.

use crate::checkpoint::{self, TrainerState};
use crate::config::TrainConfig;
use crate::data::{epoch_order, Batch, Dataset};
use crate::error::{Result, TrainError};
use crate::metrics::{write_loss_charts, MetricsLog, StepMetrics};
use crate::optim::{clip_grad_norm, AdamW, Gradients};
use crate::rng::TrainRng;
use crate::schedule::{warmup_steps, Schedule};
use crate::task::TrainTask;
use crate::threads::with_threads;
use candle_core::{DType, Var};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Where to resume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// The latest checkpoint in the output directory; a fresh start when there is none.
    Latest,
    /// This checkpoint directory (an error when it is not one).
    From(PathBuf),
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// All epochs (or `max_steps`) done.
    Completed,
    /// The eval loss stopped improving for `early_stopping_patience` evaluations.
    EarlyStopped,
    /// The stop flag was set; a checkpoint was written.
    Interrupted,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub stop: StopReason,
    /// Optimizer steps completed (including those before a resume).
    pub steps: usize,
    /// The schedule's length.
    pub total_steps: usize,
    /// The step the run resumed from, if it did.
    pub resumed_from: Option<usize>,
    /// The loss of the last step.
    pub final_loss: Option<f64>,
    pub best_eval_loss: Option<f64>,
    pub best_step: Option<usize>,
    /// The checkpoint holding the best eval loss's parameters (when `save_best`, or when a
    /// regular save fell on that step).
    pub best_checkpoint: Option<PathBuf>,
    pub last_checkpoint: Option<PathBuf>,
    pub output_dir: PathBuf,
}

/// Called after every optimizer step with that step's metrics.
pub type StepCallback = Box<dyn FnMut(&StepMetrics) + Send>;

/// Runs a [`TrainTask`] over a [`Dataset`] with a [`TrainConfig`].
pub struct Trainer {
    config: TrainConfig,
    stop: Arc<AtomicBool>,
    resume: Option<Resume>,
    progress: Option<bool>,
    on_step: Option<StepCallback>,
}

/// Layout of the run over the data.
struct Plan {
    rows: usize,
    batches_per_epoch: usize,
    steps_per_epoch: usize,
    total_steps: usize,
}

impl Trainer {
    /// A trainer for a validated config.
    pub fn new(config: TrainConfig) -> Result<Self> {
        config.validate()?;
        Ok(Trainer {
            config,
            stop: Arc::new(AtomicBool::new(false)),
            resume: None,
            progress: None,
            on_step: None,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The flag that stops the run: set it (from a Ctrl-C handler, say) and the trainer
    /// writes a checkpoint after the current optimizer step and returns
    /// [`StopReason::Interrupted`].
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Uses the caller's stop flag instead of the trainer's own.
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = flag;
        self
    }

    /// Resumes from a checkpoint instead of starting fresh.
    pub fn resume(mut self, from: Resume) -> Self {
        self.resume = Some(from);
        self
    }

    /// Shows or hides the progress bar (default: shown when stderr is a terminal).
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = Some(show);
        self
    }

    /// Calls `f` after every optimizer step.
    pub fn on_step(mut self, f: impl FnMut(&StepMetrics) + Send + 'static) -> Self {
        self.on_step = Some(Box::new(f));
        self
    }

    fn plan(&self, train: &Dataset) -> Result<Plan> {
        let c = &self.config;
        let rows = train.len();
        if rows == 0 {
            return Err(TrainError::Run("no training rows".into()));
        }
        let batches_per_epoch = rows.div_ceil(c.batch_size);
        let steps_per_epoch = batches_per_epoch.div_ceil(c.grad_accum_steps);
        let total_steps = c.max_steps.unwrap_or(c.epochs * steps_per_epoch);
        Ok(Plan {
            rows,
            batches_per_epoch,
            steps_per_epoch,
            total_steps,
        })
    }

    /// Trains `task` on `train`, evaluating on `eval` when given. Runs on `config.threads`
    /// threads. See the module docs for what one step does.
    pub fn run<T: TrainTask + Sync>(
        &mut self,
        task: &T,
        train: &Dataset,
        eval: Option<&Dataset>,
    ) -> Result<RunSummary> {
        let threads = self.config.threads;
        with_threads(threads, || self.run_here(task, train, eval))?
    }

    fn run_here<T: TrainTask>(
        &mut self,
        task: &T,
        train: &Dataset,
        eval: Option<&Dataset>,
    ) -> Result<RunSummary> {
        let cfg = self.config.clone();
        let out = cfg.output_dir.clone();
        let plan = self.plan(train)?;
        let params = task.parameters();
        if params.is_empty() {
            return Err(TrainError::Run(
                "the task has no trainable parameters".into(),
            ));
        }
        if let Some(e) = eval {
            if e.is_empty() {
                return Err(TrainError::Run("the eval set has no rows".into()));
            }
        }
        let mut opt = AdamW::new(params.clone(), cfg.adamw())?;
        let warmup = warmup_steps(plan.total_steps, cfg.warmup_steps, cfg.warmup_ratio);
        let schedule = Schedule::new(
            cfg.lr_scheduler,
            cfg.learning_rate,
            warmup,
            plan.total_steps,
        );
        tracing::info!(
            "{} rows, {} micro-batches and {} optimizer steps per epoch, {} steps in all \
             ({} warmup, {} schedule)",
            plan.rows,
            plan.batches_per_epoch,
            plan.steps_per_epoch,
            plan.total_steps,
            warmup,
            cfg.lr_scheduler.as_str()
        );
        let train_fp = train.fingerprint();
        let eval_fp = eval.map(Dataset::fingerprint);

        // Fresh start or resume.
        let from = match &self.resume {
            None => None,
            Some(Resume::From(p)) => Some(p.clone()),
            Some(Resume::Latest) => checkpoint::latest_checkpoint(&out)?,
        };
        let mut st = match &from {
            Some(dir) => {
                // The recipe and data first: a clearer message than any tensor mismatch.
                let st = checkpoint::read_state(dir)?;
                check_compatible(&st, &cfg, &train_fp, eval_fp.as_deref(), dir)?;
                let mut st = checkpoint::load(dir, &params, &mut opt)?;
                tracing::info!("resuming from {} (step {})", dir.display(), st.step);
                // Same recipe; the settings that may differ (threads, cadence) are today's.
                st.config = cfg.clone();
                st
            }
            None => {
                if let Some(p) = checkpoint::latest_checkpoint(&out)? {
                    return Err(TrainError::Run(format!(
                        "{} already holds checkpoints ({}); resume from them or choose another \
                         output_dir",
                        out.display(),
                        p.display()
                    )));
                }
                TrainerState {
                    format: TrainerState::format(),
                    step: 0,
                    epoch: 0,
                    batch_in_epoch: 0,
                    rng_state: TrainRng::new(cfg.seed).state(),
                    best_eval_loss: None,
                    best_step: None,
                    evals_without_improvement: 0,
                    total_tokens: 0,
                    elapsed_s: 0.0,
                    config_hash: cfg.hash(),
                    train_fingerprint: train_fp.clone(),
                    eval_fingerprint: eval_fp.clone(),
                    config: cfg.clone(),
                    files: Default::default(),
                    finished: false,
                }
            }
        };
        let resumed_from = from.as_ref().map(|_| st.step);
        let mut log = match resumed_from {
            Some(step) => MetricsLog::resume(&out, step)?,
            None => MetricsLog::create(&out)?,
        };
        let mut summary = RunSummary {
            stop: StopReason::Completed,
            steps: st.step,
            total_steps: plan.total_steps,
            resumed_from,
            final_loss: log.records().last().map(|m| m.loss),
            best_eval_loss: st.best_eval_loss,
            best_step: st.best_step,
            best_checkpoint: None,
            last_checkpoint: from.clone(),
            output_dir: out.clone(),
        };
        let best_dir = |step: Option<usize>| {
            step.map(|s| out.join(checkpoint::checkpoint_name(s)))
                .filter(|p| p.is_dir())
        };
        if st.finished {
            summary.stop = if st.step >= plan.total_steps {
                StopReason::Completed
            } else {
                StopReason::EarlyStopped
            };
            summary.best_checkpoint = best_dir(st.best_step);
            return Ok(summary);
        }

        let bar = self.progress_bar(plan.total_steps, st.step);
        let mut rng = TrainRng::from_state(st.rng_state);
        let mut order = epoch_order(plan.rows, cfg.seed, st.epoch, cfg.shuffle);
        let mut order_epoch = st.epoch;
        let started = Instant::now();
        let elapsed_before = st.elapsed_s;
        let mut last_saved = from.as_ref().map(|_| st.step);

        loop {
            if st.step >= plan.total_steps {
                summary.stop = StopReason::Completed;
                break;
            }
            if self.stop.load(Ordering::SeqCst) {
                summary.stop = StopReason::Interrupted;
                break;
            }
            // One optimizer step.
            let t0 = Instant::now();
            let lr = schedule.lr(st.step);
            let mut grads = Gradients::empty(params.len());
            let (mut loss_sum, mut count, mut tokens) = (0.0f64, 0usize, 0usize);
            for micro in 0..cfg.grad_accum_steps {
                if st.batch_in_epoch >= plan.batches_per_epoch {
                    if micro > 0 {
                        break;
                    }
                    st.epoch += 1;
                    st.batch_in_epoch = 0;
                }
                if order_epoch != st.epoch {
                    order = epoch_order(plan.rows, cfg.seed, st.epoch, cfg.shuffle);
                    order_epoch = st.epoch;
                }
                let lo = st.batch_in_epoch * cfg.batch_size;
                let hi = (lo + cfg.batch_size).min(plan.rows);
                let batch = train.batch(&order[lo..hi])?;
                let (l, n) = micro_step(task, &batch, &params, &mut grads, &mut rng, st.step)?;
                loss_sum += l;
                count += n;
                tokens += batch.tokens();
                st.batch_in_epoch += 1;
            }
            if st.batch_in_epoch >= plan.batches_per_epoch {
                st.epoch += 1;
                st.batch_in_epoch = 0;
            }
            grads.scale(1.0 / count as f64)?;
            let grad_norm = if cfg.max_grad_norm > 0.0 {
                clip_grad_norm(&mut grads, cfg.max_grad_norm)?
            } else {
                grads.global_norm()?
            };
            opt.step(&grads, lr)?;
            st.step += 1;
            st.rng_state = rng.state();
            st.total_tokens += tokens as u64;
            let step_secs = t0.elapsed().as_secs_f64();
            let loss = loss_sum / count as f64;

            // Evaluation and early stopping.
            let due = st.step >= plan.total_steps
                || (cfg.eval_every > 0 && st.step % cfg.eval_every == 0);
            let mut eval_loss = None;
            let mut improved = false;
            let mut stop_early = false;
            if let (Some(e), true) = (eval, due) {
                let el = evaluate(task, e, cfg.eval_batch(), &rng)?;
                eval_loss = Some(el);
                if st
                    .best_eval_loss
                    .is_none_or(|b| el < b - cfg.early_stopping_min_delta)
                {
                    st.best_eval_loss = Some(el);
                    st.best_step = Some(st.step);
                    st.evals_without_improvement = 0;
                    improved = true;
                } else {
                    st.evals_without_improvement += 1;
                    stop_early = cfg.early_stopping_patience > 0
                        && st.evals_without_improvement >= cfg.early_stopping_patience;
                }
                say(
                    &bar,
                    format!(
                        "step {}: eval loss {el:.4}{}",
                        st.step,
                        if improved { " (best)" } else { "" }
                    ),
                );
            }
            st.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
            let metrics = StepMetrics {
                step: st.step,
                epoch: st.epoch as f64 + st.batch_in_epoch as f64 / plan.batches_per_epoch as f64,
                lr,
                loss,
                grad_norm,
                tokens,
                target_tokens: count,
                tokens_per_s: tokens as f64 / step_secs.max(1e-9),
                elapsed_s: st.elapsed_s,
                eval_loss,
            };
            log.append(metrics.clone())?;
            summary.steps = st.step;
            summary.final_loss = Some(loss);
            bar.set_position(st.step as u64);
            bar.set_message(format!(
                "loss {loss:.4} · {:.0} tok/s",
                metrics.tokens_per_s
            ));

            let finishing = stop_early || st.step >= plan.total_steps;
            let save = finishing
                || (cfg.save_every > 0 && st.step % cfg.save_every == 0)
                || (improved && cfg.save_best);
            if finishing {
                st.finished = true;
            }
            if save {
                let dir = self.save(&st, &params, &opt, &log)?;
                last_saved = Some(st.step);
                summary.last_checkpoint = Some(dir);
            }
            if let Some(cb) = self.on_step.as_mut() {
                cb(&metrics);
            }
            if stop_early {
                summary.stop = StopReason::EarlyStopped;
                say(
                    &bar,
                    format!(
                        "early stop at step {}: no eval improvement in {} evaluations",
                        st.step, cfg.early_stopping_patience
                    ),
                );
                break;
            }
        }

        // The end: an eval that has not happened yet (interrupted runs skip it), a final
        // checkpoint and the charts.
        if summary.stop == StopReason::Interrupted {
            st.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
            if st.step > 0 && last_saved != Some(st.step) {
                summary.last_checkpoint = Some(self.save(&st, &params, &opt, &log)?);
            }
            bar.println(format!(
                "interrupted at step {}; checkpoint written",
                st.step
            ));
        }
        write_loss_charts(&out, log.records())?;
        bar.finish_and_clear();
        summary.best_eval_loss = st.best_eval_loss;
        summary.best_step = st.best_step;
        summary.best_checkpoint = best_dir(st.best_step);
        Ok(summary)
    }

    fn save(
        &self,
        st: &TrainerState,
        params: &[(String, Var)],
        opt: &AdamW,
        log: &MetricsLog,
    ) -> Result<PathBuf> {
        let out = &self.config.output_dir;
        let dir = checkpoint::save(out, st, params, opt)?;
        let protect = st.best_step.filter(|_| self.config.save_best);
        checkpoint::rotate(out, self.config.keep_checkpoints, protect)?;
        write_loss_charts(out, log.records())?;
        Ok(dir)
    }

    fn progress_bar(&self, total: usize, at: usize) -> ProgressBar {
        let show = self
            .progress
            .unwrap_or_else(|| std::io::stderr().is_terminal());
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            if show {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} train [{elapsed_precise}] {bar:30} {pos}/{len} steps · {msg} · ETA {eta}",
        ) {
            bar.set_style(style);
        }
        bar.set_position(at as u64);
        bar.reset_eta();
        bar
    }
}

/// A line above the progress bar, or in the log when there is no bar.
fn say(bar: &ProgressBar, msg: String) {
    if bar.is_hidden() {
        tracing::info!("{msg}");
    } else {
        bar.println(msg);
    }
}

/// One micro-batch: forward, backward, gradients added to `grads`. Returns the summed loss
/// and the scored-token count.
fn micro_step<T: TrainTask>(
    task: &T,
    batch: &Batch,
    params: &[(String, Var)],
    grads: &mut Gradients,
    rng: &mut TrainRng,
    step: usize,
) -> Result<(f64, usize)> {
    let (loss, n) = task.loss(batch, true, rng)?;
    let l = scalar(&loss, step)?;
    if n == 0 {
        return Err(TrainError::Run(format!(
            "step {}: a micro-batch has no scored tokens",
            step + 1
        )));
    }
    let store = loss.backward()?;
    grads.accumulate(&store, params)?;
    Ok((l, n))
}

fn scalar(loss: &candle_core::Tensor, step: usize) -> Result<f64> {
    if loss.elem_count() != 1 {
        return Err(TrainError::Run(format!(
            "the task's loss has shape {:?}; it must be one number",
            loss.dims()
        )));
    }
    let l = loss.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?[0];
    if !l.is_finite() {
        return Err(TrainError::Run(format!(
            "the loss is {l} at step {}: training diverged (lower the learning rate?)",
            step + 1
        )));
    }
    Ok(l)
}

/// Accumulates the gradients of the mean loss per scored token over `batches`, exactly as
/// one optimizer step does (before clipping). Returns them with the mean loss and the
/// scored-token count. Public so that tests (and tools) can check accumulation.
pub fn accumulate_gradients<T: TrainTask>(
    task: &T,
    batches: &[Batch],
    rng: &mut TrainRng,
) -> Result<(Gradients, f64, usize)> {
    let params = task.parameters();
    let mut grads = Gradients::empty(params.len());
    let (mut sum, mut count) = (0.0, 0);
    for b in batches {
        let (l, n) = micro_step(task, b, &params, &mut grads, rng, 0)?;
        sum += l;
        count += n;
    }
    if count == 0 {
        return Err(TrainError::Run("no scored tokens".into()));
    }
    grads.scale(1.0 / count as f64)?;
    Ok((grads, sum / count as f64, count))
}

/// The mean loss per scored token over all rows of `data` (in order, no dropout). The task
/// gets a copy of `rng`, so evaluating never changes the training stream.
pub fn evaluate<T: TrainTask>(
    task: &T,
    data: &Dataset,
    batch_size: usize,
    rng: &TrainRng,
) -> Result<f64> {
    let order: Vec<usize> = (0..data.len()).collect();
    let (mut sum, mut count) = (0.0f64, 0usize);
    for batch in data.batches(&order, batch_size) {
        let batch = batch?;
        let mut r = *rng;
        let (loss, n) = task.loss(&batch, false, &mut r)?;
        let l = loss.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        sum += l.first().copied().unwrap_or(f64::NAN);
        count += n;
    }
    if count == 0 {
        return Err(TrainError::Run("the eval set has no scored tokens".into()));
    }
    Ok(sum / count as f64)
}

fn check_compatible(
    st: &TrainerState,
    cfg: &TrainConfig,
    train_fp: &str,
    eval_fp: Option<&str>,
    dir: &Path,
) -> Result<()> {
    let state_file = dir.join(checkpoint::STATE_FILE);
    if st.config_hash != cfg.hash() {
        let diff = cfg.differing_fields(&st.config);
        return Err(TrainError::checkpoint(
            &state_file,
            format!(
                "was written with another training recipe; changed: {}. Resume with the \
                 original settings, or start a new run in another output_dir",
                if diff.is_empty() {
                    "(unknown fields)".to_string()
                } else {
                    diff.join(", ")
                }
            ),
        ));
    }
    if st.train_fingerprint != train_fp {
        return Err(TrainError::checkpoint(
            &state_file,
            "was written for other training data (the rows differ: dataset, split, \
             tokenizer, max_seq_len or packing changed)",
        ));
    }
    if st.eval_fingerprint.as_deref() != eval_fp {
        return Err(TrainError::checkpoint(
            &state_file,
            "was written for another eval set (rows differ, or eval was added / removed)",
        ));
    }
    Ok(())
}
