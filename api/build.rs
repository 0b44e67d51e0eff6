//! Build script of haapi: gives libhaapi.so its SONAME (Cargo sets none),
//! so that programs linked with `-lhaapi` need `libhaapi.so.0`.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libhaapi.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
