//! `export_lora ADAPTER_DIR BASE.gguf OUT.gguf`: a PEFT adapter as llama.cpp's LoRA GGUF,
//! for tools/export_reference.py.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: export_lora ADAPTER_DIR BASE.gguf OUT.gguf");
        std::process::exit(2);
    }
    match vigil_export::export_lora_gguf(args[1].as_ref(), args[2].as_ref(), args[3].as_ref()) {
        Ok(r) => println!(
            "{{\"tensors\": {}, \"alpha\": {}, \"permuted\": {}}}",
            r.tensors, r.alpha, r.permuted
        ),
        Err(e) => {
            eprintln!("export failed: {e}");
            std::process::exit(1);
        }
    }
}
