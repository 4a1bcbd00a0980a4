// The Verilator bridge compiles C++ at run time with the `cc` crate, which needs the
// target triple it would get inside a build script.
fn main() {
    println!(
        "cargo:rustc-env=TERN_TARGET={}",
        std::env::var("TARGET").unwrap()
    );
    println!(
        "cargo:rustc-env=TERN_HOST={}",
        std::env::var("HOST").unwrap()
    );
    println!("cargo:rerun-if-changed=build.rs");
}
