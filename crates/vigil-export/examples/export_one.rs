//! `export_one SOURCE.gguf TYPE OUT.gguf`: one export, timed, for tools/export_reference.py
//! (which measures this process's peak memory from outside).

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: export_one SOURCE.gguf TYPE OUT.gguf");
        std::process::exit(2);
    }
    let ty: vigil_export::ExportType = match args[2].parse() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match vigil_export::export_gguf(args[1].as_ref(), args[3].as_ref(), ty) {
        Ok(r) => println!(
            "{{\"seconds\": {:.3}, \"bytes\": {}, \"copied\": {}, \"tensors\": {}}}",
            r.seconds,
            r.bytes,
            r.copied,
            r.tensors.len()
        ),
        Err(e) => {
            eprintln!("export failed: {e}");
            std::process::exit(1);
        }
    }
}
