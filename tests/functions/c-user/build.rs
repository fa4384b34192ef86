// C compiled for the function's target: what makes `cargo xtask build` choose Zig.
fn main() {
    println!("cargo::rerun-if-changed=src/digits.c");
    cc::Build::new().file("src/digits.c").compile("digits");
}
