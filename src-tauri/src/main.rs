//! The desktop app's entry point; everything else is in the library.

/// The same allocator as `votehub serve`, for the same fan-out (see
/// `hub/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    votehub_desktop::run()
}
