//! `edgecd`: the operator command-line interface (grows with the SDK).

fn main() {
    println!("edgecd {}", env!("CARGO_PKG_VERSION"));
}
