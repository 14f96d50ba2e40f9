//! `vigil chat`: an interactive, streaming conversation. `/reset` starts over, `/exit` ends.

use super::common::{print_piece, ModelOpts};
use super::generate::SamplingOpts;
use anyhow::Context;
use clap::Args;
use std::io::BufRead;
use vigil_model::Generator;
use vigil_tokenizer::ChatMessage;

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelOpts,
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingOpts,
}

pub fn run(args: ChatArgs) -> anyhow::Result<std::process::ExitCode> {
    let model = args.model.load()?;
    let template = model.tokenizer.chat_template().with_context(|| {
        format!(
            "{} has no chat template, so it cannot chat; try `vigil generate --raw`",
            model.path.display()
        )
    })?;
    let fresh = || -> Vec<ChatMessage> {
        args.system
            .iter()
            .map(|s| ChatMessage::system(s.clone()))
            .collect()
    };
    let mut messages = fresh();
    let generator = Generator::new(&model);
    let stdin = std::io::stdin();
    eprintln!("vigil chat — {} (/reset, /exit)", model.info.architecture);
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "/exit" | "/quit" => break,
            "/reset" => {
                messages = fresh();
                eprintln!("(conversation cleared)");
                continue;
            }
            "" => continue,
            _ => {}
        }
        messages.push(ChatMessage::user(line));
        let prompt = template.render(&messages, true)?;
        let ids = model.tokenizer.encode(&prompt, false, true)?;
        let mut req = args.sampling.request(ids);
        req.adapter = args.model.active_adapter();
        let out = generator.generate(&req, &mut |piece| print_piece(piece))?;
        println!();
        messages.push(ChatMessage::assistant(out.text));
    }
    Ok(std::process::ExitCode::SUCCESS)
}
