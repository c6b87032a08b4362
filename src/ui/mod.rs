//! The desktop app. Views are plain egui over the engine's data; only `app.rs` knows eframe.

mod app;
pub mod inspector;

pub use app::run_app;
