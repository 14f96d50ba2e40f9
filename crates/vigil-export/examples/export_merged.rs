//! `export_merged SOURCE.gguf OUT_DIR [ADAPTER_DIR]`: a Hugging Face directory, for checking
//! with transformers.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: export_merged SOURCE.gguf OUT_DIR [ADAPTER_DIR]");
        std::process::exit(2);
    }
    let adapter = args.get(3).map(std::path::PathBuf::from);
    match vigil_export::export_merged(
        args[1].as_ref(),
        args[2].as_ref(),
        adapter.as_deref(),
        vigil_export::merged::DEFAULT_SHARD_BYTES,
    ) {
        Ok(r) => println!(
            "{{\"tensors\": {}, \"shards\": {}, \"bytes\": {}}}",
            r.tensors, r.shards, r.bytes
        ),
        Err(e) => {
            eprintln!("export failed: {e}");
            std::process::exit(1);
        }
    }
}
