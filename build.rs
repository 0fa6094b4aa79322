//! Generates include/mcrs.h from the doc-commented C ABI in src/ffi with
//! cbindgen (plus the version macros, from Cargo.toml). The header is
//! committed; CI rebuilds and fails if it changed. On ELF targets it also
//! gives libmcrs.so its SONAME (see `soname` below).

use std::path::{Path, PathBuf};

/// The ABI version: the part of the crate version that changes on an
/// incompatible change (Cargo's semver rule, as cargo-c applies it): the
/// major version from 1.0 on, "0.<minor>" before. Bump the version that way
/// when bindings/c/abi_check.sh reports a break, and regenerate the baseline.
fn abi_version(major: &str, minor: &str) -> String {
    if major == "0" {
        format!("0.{minor}")
    } else {
        major.to_string()
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by cargo"));
    let dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let (major, minor, patch) = (
        env("CARGO_PKG_VERSION_MAJOR"),
        env("CARGO_PKG_VERSION_MINOR"),
        env("CARGO_PKG_VERSION_PATCH"),
    );
    let abi = abi_version(&major, &minor);

    soname(&abi);

    let mut config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    config.after_includes = Some(version_macros(&major, &minor, &patch, &abi));
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate include/mcrs.h");
    // write_to_file leaves the file (and its mtime) alone when nothing changed
    bindings.write_to_file(dir.join("include/mcrs.h"));
}

/// The compile-time version macros of include/mcrs.h.
fn version_macros(major: &str, minor: &str, patch: &str, abi: &str) -> String {
    let pre = std::env::var("CARGO_PKG_VERSION_PRE").unwrap_or_default();
    let string = if pre.is_empty() {
        format!("{major}.{minor}.{patch}")
    } else {
        format!("{major}.{minor}.{patch}-{pre}")
    };
    format!(
        r#"
// The version of mcrs this header belongs to (from Cargo.toml). mcrs_version()
// gives the version of the library actually loaded at run time.
#define MCRS_VERSION_MAJOR {major}
#define MCRS_VERSION_MINOR {minor}
#define MCRS_VERSION_PATCH {patch}
#define MCRS_VERSION_STRING "{string}"
// MAJOR * 10000 + MINOR * 100 + PATCH, for #if comparisons.
#define MCRS_VERSION_NUMBER ({major} * 10000 + {minor} * 100 + {patch})
// True when this header is version major.minor.patch or newer:
// #if MCRS_VERSION_AT_LEAST(0, 2, 0)
#define MCRS_VERSION_AT_LEAST(major, minor, patch) \
  (MCRS_VERSION_NUMBER >= (major) * 10000 + (minor) * 100 + (patch))
// The ABI version: the library's SONAME is libmcrs.so.<MCRS_ABI_VERSION>.
#define MCRS_ABI_VERSION "{abi}""#
    )
}

/// Sets the SONAME of the cdylib to libmcrs.so.ABI on ELF targets, and puts a
/// libmcrs.so.ABI -> libmcrs.so symlink next to where cargo writes the library,
/// so that programs linked against the build tree (tests/c, examples, the Go
/// binding) find it at run time under the name they recorded.
fn soname(abi: &str) {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = matches!(
        os.as_str(),
        "linux"
            | "android"
            | "freebsd"
            | "netbsd"
            | "openbsd"
            | "dragonfly"
            | "illumos"
            | "solaris"
    );
    if !elf {
        return;
    }
    let name = format!("libmcrs.so.{abi}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{name}");

    // OUT_DIR is <target>[/<triple>]/<profile>/build/mcrs-<hash>/out
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let Some(profile_dir) = out.ancestors().nth(3) else {
        return;
    };
    link_soname(profile_dir, &name);
}

#[cfg(unix)]
fn link_soname(profile_dir: &Path, name: &str) {
    let link = profile_dir.join(name);
    if std::fs::read_link(&link)
        .map(|t| t == Path::new("libmcrs.so"))
        .unwrap_or(false)
    {
        return;
    }
    let _ = std::fs::remove_file(&link);
    if let Err(e) = std::os::unix::fs::symlink("libmcrs.so", &link) {
        println!("cargo:warning=could not create {}: {e}", link.display());
    }
}

#[cfg(not(unix))]
fn link_soname(_profile_dir: &Path, _name: &str) {}
