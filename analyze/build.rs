//! The built-in checks are embedded from `queries/`: rebuild when a file there is added,
//! removed or changed.
fn main() {
    println!("cargo:rerun-if-changed=../queries");
}
