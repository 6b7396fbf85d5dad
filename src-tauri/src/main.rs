//! The desktop app's entry point; everything else is in the library.
// A window, not a console, on Windows (release builds; debug builds keep
// the console for their logs).
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// The same allocator as `votehub serve`, for the same fan-out (see
/// `hub/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    votehub_desktop::run()
}
