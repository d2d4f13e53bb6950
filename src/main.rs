//! The `routeproof` command line.

fn main() {
    println!("routeproof");
}
