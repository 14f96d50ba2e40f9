//! Print the discovery of a directory as JSON: `cargo run -p vigil-scan --example discover -- PATH`.

fn main() {
    let Some(root) = std::env::args().nth(1) else {
        eprintln!("usage: discover PATH");
        std::process::exit(2);
    };
    match vigil_scan::scan_tree(std::path::Path::new(&root), &Default::default()) {
        Ok(d) => println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
