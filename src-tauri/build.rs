fn main() {
    // Capabilities live in src-tauri/ while tauri.conf.json sits at the
    // root: without this pattern tauri-build finds none and grants nothing.
    let attributes =
        tauri_build::Attributes::new().capabilities_path_pattern("./src-tauri/capabilities/**/*");
    if let Err(e) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {e:#}");
    }
}
