//! Generates include/mcrs.h from the doc-commented C ABI in src/ffi with
//! cbindgen. The header is committed; CI rebuilds and fails if it changed.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate include/mcrs.h");
    // write_to_file leaves the file (and its mtime) alone when nothing changed
    bindings.write_to_file(dir.join("include/mcrs.h"));
}
